import Foundation
import GGUF
import Testing
@testable import Inference

/// Gemma 3's interleaved sliding-window attention on the real Gemma 3 270M file: its layers' window
/// and RoPE bases as the metadata says, a KV cache that keeps only the window for local layers and
/// moves it as positions leave it, giving the same logits however the tokens are batched, and
/// prefix reuse that never attends to a dropped position. (Agreement with llama.cpp on this file is
/// in QuantizedModelTests.)
@Suite(.serialized) struct SlidingWindowTests {
    static let model: Result<LanguageModel, Error> = TestSupport.gemmaFile.flatMap { f in Result { try LanguageModel(file: f) } }

    /// A text long enough to cross the window twice over (~1,050 tokens), with BOS.
    static func tokens(_ model: LanguageModel) throws -> [Int32] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/long-text.txt")
        let text = try String(contentsOf: url, encoding: .utf8)
        return model.tokenizer.encode(text, addSpecial: true, parseSpecial: false)
    }

    @Test func configurationFollowsTheMetadata() throws {
        let model = try Self.model.get()
        let c = model.config
        #expect(model.architecture.name == "gemma3")
        #expect(c.slidingWindow == 512)
        // five local layers, then a global one (llama.cpp's default pattern of 6 for gemma3)
        #expect(c.slidingWindowLayers == (0..<18).map { $0 % 6 != 5 })
        #expect(c.rope(layer: 0).base == 10000)
        #expect(c.rope(layer: 5).base == 1_000_000)
        #expect(c.attentionScale == 1 / Float(c.headDimension).squareRoot())
        #expect(model.tokenizer.addBOS)
        #expect(try model.chatTemplate().family == .gemma)
    }

    /// The whole text in batches of 32, and the same text with its last 80 tokens one at a time:
    /// the local layers' caches move at position 1024 in both, and every logit is the same bits.
    @Test func batchedAndOneByOneGiveTheSameLogits() throws {
        let model = try Self.model.get()
        let ids = try Self.tokens(model)
        #expect(ids.count > 1030)
        let tail = 80
        var batched: [[Float]] = []
        let a = try InferenceSession(model: model, contextLength: ids.count, threads: 2)
        try a.evaluate(ids, allLogits: true) { i, out in
            if i >= ids.count - tail { batched.append(Array(out)) }
        }
        let b = try InferenceSession(model: model, contextLength: ids.count, threads: 2)
        _ = try b.evaluate(Array(ids[..<(ids.count - tail)]))
        for (j, id) in ids[(ids.count - tail)...].enumerated() {
            let out = try b.evaluate([id])
            #expect(out == batched[j], "position \(ids.count - tail + j)")
        }
    }

    /// After the local layers dropped positions, a prefix that still has its successor's window
    /// is kept and gives a fresh evaluation's logits; one whose window reaches before the dropped
    /// positions is not kept at all.
    @Test func prefixReuseRespectsTheWindow() throws {
        let model = try Self.model.get()
        let ids = try Self.tokens(model)
        let session = try InferenceSession(model: model, contextLength: ids.count, threads: 2)
        _ = try session.evaluate(ids)   // 1,050+ positions: the local caches start at 1024 - 511

        // Sharing the first 1,040 tokens: their window (529...) is still cached.
        var prompt = Array(ids[..<1040]) + [ids[5], ids[6]]
        let kept = session.reusePrefix(of: prompt)
        #expect(kept == 1040)
        let reused = try session.evaluate(Array(prompt[kept...]))
        let fresh = try InferenceSession(model: model, contextLength: ids.count, threads: 2)
        #expect(try fresh.evaluate(prompt) == reused)

        // Sharing the first 600: position 600's window starts at 89, long dropped.
        prompt = Array(ids[..<600]) + [ids[7]]
        #expect(session.reusePrefix(of: prompt) == 0)
        #expect(try session.evaluate(prompt) == (try fresh.evaluate(prompt, fresh: true)))
    }
}

private extension InferenceSession {
    /// Evaluates `tokens` from an empty cache.
    func evaluate(_ tokens: [Int32], fresh: Bool) throws -> [Float] {
        reset()
        return try evaluate(tokens)
    }
}
