import Foundation
import OutpostTesting
import Testing

/// The engine's command-line contracts: JSON on stdout, one-line errors on stderr.
@Suite struct EngineCommandTests {
    func json(_ r: OutpostBinary.Result) throws -> [String: Any] {
        #expect(r.status == 0, "\(r.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    @Test func tokenizeAndDetokenize() throws {
        let model = try TestModel.path()
        let plain = try json(OutpostBinary.run(["tokenize", "--model", model, "--text", "Hello, world!", "--json"]))
        #expect(plain["ids"] as? [Int] == [19556, 28, 905, 17])
        let special = try json(OutpostBinary.run(["tokenize", "--model", model, "--text", "<|im_end|>", "--special", "--json"]))
        #expect(special["ids"] as? [Int] == [2])
        let noSpecial = try json(OutpostBinary.run(["tokenize", "--model", model, "--text", "<|im_end|>", "--json"]))
        #expect((noSpecial["ids"] as? [Int])?.count ?? 0 > 1)
        let text = try json(OutpostBinary.run(["detokenize", "--model", model, "--ids", "1,4093,198,26843,2"]))
        #expect(text["text"] as? String == "<|im_start|>user\nHi<|im_end|>")
    }

    @Test func badInputsAreOneLineErrors() throws {
        let model = try TestModel.path()
        for args in [["detokenize", "--model", model, "--ids", "1,x"],
                     ["detokenize", "--model", model, "--ids", "99999999"],
                     ["tokenize", "--model", model],
                     ["generate", "--model", model, "--prompt", "Hi", "--chat", "--template", "nope"]] {
            let r = try OutpostBinary.run(args)
            #expect(r.status == 1, "\(args)")
            #expect(r.stdout.isEmpty, "\(args)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
    }

    /// A few tokens only: debug builds run the kernels unoptimised.
    @Test func logitsAndGenerateShapes() throws {
        let model = try TestModel.path()
        let dir = try TemporaryDirectory(prefix: "outpost-logits")
        defer { dir.remove() }
        let idsFile = dir.file("ids.txt").path
        try "7042, 30, 198".write(toFile: idsFile, atomically: true, encoding: .utf8)
        let logits = try json(OutpostBinary.run(["logits", "--model", model, "--ids-file", idsFile, "--from", "1",
                                                 "--top-k", "3", "--json"], timeout: 300))
        let steps = try #require(logits["steps"] as? [[String: Any]])
        #expect(steps.map { $0["pos"] as? Int } == [1, 2])
        for step in steps {
            let top = try #require(step["top"] as? [[Double]])
            #expect(top.count == 3)
            #expect(top[0][1] >= top[1][1] && top[1][1] >= top[2][1])
        }
        let gen = try json(OutpostBinary.run(["generate", "--model", model, "--prompt", "The capital of France is",
                                              "--max-tokens", "3", "--json"], timeout: 300))
        #expect((gen["prompt_ids"] as? [Int])?.isEmpty == false)
        #expect((gen["ids"] as? [Int])?.count == 3)
        #expect(gen["text"] as? String != nil)
        #expect(gen["tokens_per_s"] as? Double != nil && gen["prompt_tokens_per_s"] as? Double != nil)
    }
}
