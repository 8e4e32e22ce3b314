import CQuants
import Foundation
import GGUF
import Testing
@testable import Inference

/// The engine on SmolLM2 re-quantized by llama.cpp itself to the formats people download (Q4_0,
/// Q4_K_M, Q5_K_M, Q6_K: mixes of Q4_K/Q5_K/Q6_K on rows that are whole super-blocks and
/// Q5_0/Q5_1/Q8_0 on the others), against llama.cpp's own outputs on the same files.
/// `scripts/make-test-models.sh` (run by scripts/test.sh) makes the files and the references
/// (`<model>.llamacpp.json`) in the model cache; a missing file fails the test.
/// Serialized: each test uses every core.
@Suite(.serialized) struct QuantizedModelTests {
    static let variants = ["Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"]

    struct Missing: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path) not found; run scripts/make-test-models.sh" }
    }

    struct Variant {
        let name: String
        let model: LanguageModel
        let reference: [String: Any]
    }

    static func path(_ variant: String) -> String {
        (TestSupport.modelPath as NSString).deletingLastPathComponent + "/SmolLM2-135M-Instruct.\(variant).gguf"
    }

    static func load(_ variant: String) throws -> Variant {
        let path = path(variant)
        let json = path + ".llamacpp.json"
        guard FileManager.default.fileExists(atPath: path) else { throw Missing(path: path) }
        guard FileManager.default.fileExists(atPath: json) else { throw Missing(path: json) }
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        let model = try LanguageModel(file: GGUFFile(path: path))
        return Variant(name: variant, model: model, reference: reference)
    }

    /// The files are the mixes llama.cpp makes (so every new kernel is exercised), and every
    /// tensor type in them runs here.
    @Test(arguments: variants) func fileHoldsTheExpectedTypes(_ name: String) throws {
        let file = try GGUFFile(path: Self.path(name))
        var types: [String: Int] = [:]
        for t in file.tensors { types[t.type.name, default: 0] += 1 }
        for t in file.tensors where t.dimensions.count == 2 {
            #expect(cq_type_supported(Int32(t.type.rawValue)) != 0, "\(name): \(t.name) is \(t.type.name)")
        }
        let expected: [String: [String]] = [
            "Q4_0": ["Q4_0"], "Q4_K_M": ["Q4_K", "Q6_K"], "Q5_K_M": ["Q5_K", "Q6_K"], "Q6_K": ["Q6_K"],
        ]
        for t in expected[name]! { #expect(types[t, default: 0] > 0, "\(name) has no \(t) tensors: \(types)") }
    }

    @Test(arguments: variants) func tokenizationEqualsLlamaCpp(_ name: String) throws {
        let v = try Self.load(name)
        let cases = try #require(v.reference["tokenize"] as? [[String: Any]])
        #expect(cases.count >= 5)
        for c in cases {
            let text = try #require(c["text"] as? String)
            let special = c["special"] as? Bool ?? false
            let ids = try #require(c["ids"] as? [Int]).map(Int32.init)
            #expect(v.model.tokenizer.encode(text, parseSpecial: special) == ids, "\(name): \(text.debugDescription)")
        }
    }

    /// Teacher-forced, all positions in one pass: the argmax is llama.cpp's at >= 99% of the
    /// positions where llama.cpp's top-1 margin is at least 0.5; there, each of llama.cpp's top-8
    /// logits is within 2.0 of ours (llama.cpp's own batched and one-token paths differ by up to
    /// ~1.7, ../shared/golden/README.md) and they are within 0.3 on average.
    @Test(arguments: variants) func teacherForcedLogitsAgreeWithLlamaCpp(_ name: String) throws {
        let v = try Self.load(name)
        let logits = try #require(v.reference["logits"] as? [String: Any])
        let ids = try #require(logits["ids"] as? [Int]).map(Int32.init)
        let steps = try #require(logits["steps"] as? [[String: Any]])
        #expect(steps.count == ids.count)
        let session = try InferenceSession(model: v.model, contextLength: ids.count)
        var agreed = 0, considered = 0, topChecked = 0
        var worst: Float = 0, total: Double = 0
        try session.evaluate(ids, allLogits: true) { i, out in
            let step = steps[i]
            let margin = step["margin"] as! Double
            let top = (step["top"] as! [[Double]]).map { (id: Int32($0[0]), logit: Float($0[1])) }
            guard margin >= 0.5 else { return }
            considered += 1
            if argmax(out) == top[0].id { agreed += 1 }
            for (id, value) in top {
                let diff = abs(out[Int(id)] - value)
                worst = max(worst, diff)
                total += Double(diff)
                topChecked += 1
                #expect(diff <= 2.0, "\(name) position \(i) token \(id): \(out[Int(id)]) vs llama.cpp \(value)")
            }
        }
        let mean = total / Double(max(topChecked, 1))
        print("\(name): argmax agreement \(agreed)/\(considered) positions with margin >= 0.5; top-8 logits differ by \(mean) on average, \(worst) at worst")
        #expect(mean <= 0.3)
        #expect(considered >= 100)
        #expect(Double(agreed) >= 0.99 * Double(considered))
    }

    /// Perplexity over a text of about 1,100 tokens within 2% of llama.cpp's on the same file.
    @Test(arguments: variants) func perplexityWithinTwoPercentOfLlamaCpp(_ name: String) throws {
        let v = try Self.load(name)
        let reference = try #require(v.reference["perplexity"] as? [String: Any])
        let text = try #require(reference["text"] as? String)
        let ids = try #require(reference["ids"] as? [Int]).map(Int32.init)
        let expected = try #require(reference["perplexity"] as? Double)
        #expect(ids.count >= 1000)
        #expect(v.model.tokenizer.encode(text) == ids)
        let result = try Perplexity.compute(model: v.model, tokens: ids)
        print("\(name): perplexity \(result.perplexity) vs llama.cpp \(expected) over \(ids.count) tokens")
        #expect(abs(result.perplexity - expected) / expected < 0.02)
    }
}
