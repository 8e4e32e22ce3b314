import Foundation
import OutpostTesting
import Testing
@testable import Inference

@Suite struct TokenizerTests {
    @Test func goldenTokenization() throws {
        let tokenizer = try TestSupport.tokenizer.get()
        let golden = try TestSupport.fixture("tokenize.json") as! [String: Any]
        let cases = golden["tokenize"] as! [[String: Any]]
        #expect(cases.count > 40)
        for c in cases {
            let text = c["text"] as! String
            let expected = (c["ids"] as! [Int]).map(Int32.init)
            let ids = tokenizer.encode(text, parseSpecial: true)
            #expect(ids == expected, "tokenize \(text.debugDescription)")
            let pieces = (c["pieces_hex"] as! [String]).map(hexBytes)
            #expect(ids.map { Array(tokenizer.piece($0)) } == pieces, "pieces of \(text.debugDescription)")
        }
    }

    @Test func goldenDetokenization() throws {
        let tokenizer = try TestSupport.tokenizer.get()
        let golden = try TestSupport.fixture("tokenize.json") as! [String: Any]
        let cases = golden["detokenize"] as! [[String: Any]]
        for c in cases {
            let ids = (c["ids"] as! [Int]).map(Int32.init)
            let bytes = hexBytes(c["bytes_hex"] as! String)
            #expect(try tokenizer.decode(ids) == bytes, "detokenize \(ids)")
            if let plain = c["text_no_special"] as? String {
                #expect(try tokenizer.decodeText(ids, special: false) == plain, "detokenize without special \(ids)")
            }
        }
    }

    @Test func specialTextIsOrdinaryWithoutSpecialParsing() throws {
        let tokenizer = try TestSupport.tokenizer.get()
        let plain = tokenizer.encode("<|im_end|>", parseSpecial: false)
        #expect(plain.count > 1)
        #expect(!plain.contains(2))
        #expect(tokenizer.encode("<|im_end|>", parseSpecial: true) == [2])
        #expect(try tokenizer.decodeText(plain) == "<|im_end|>")
    }

    @Test func endOfGenerationTokens() throws {
        let tokenizer = try TestSupport.tokenizer.get()
        #expect(tokenizer.eos == 2)
        #expect(tokenizer.endOfGeneration.contains(2))
        #expect(tokenizer.endOfGeneration.contains(0))
        #expect(!tokenizer.addBOS)
    }

    @Test func outOfRangeIdThrows() throws {
        let tokenizer = try TestSupport.tokenizer.get()
        #expect(throws: InferenceError.self) { try tokenizer.decode([49152]) }
    }

    /// The pre-tokenizers on their own, with a tiny vocabulary of single characters.
    @Test func preTokenizerSplits() {
        func words(_ name: String, _ text: String) -> [String] {
            let scalars = Array(text.unicodeScalars)
            return PreTokenizer(name: name)!.split(scalars).map { r in
                var v = String.UnicodeScalarView(); v.append(contentsOf: scalars[r]); return String(v)
            }
        }
        #expect(words("gpt2", "Hello  world's 123!!") == ["Hello", " ", " world", "'s", " 123", "!!"])
        #expect(words("smollm", "year 2024.") == ["year", " ", "2", "0", "2", "4", "."])
        #expect(words("llama3", "I'VE 12345 ok\n\n x") == ["I", "'VE", " ", "123", "45", " ok", "\n\n", " x"])
        #expect(words("qwen2", "ab 12") == ["ab", " ", "1", "2"])
        #expect(words("llama3", "a...\n\nb") == ["a", "...\n\n", "b"])
    }

    @Test func cleanSpaces() {
        #expect(Tokenizer.cleanSpaces(Array("a , b . it 's".utf8)) == Array("a, b. it's".utf8))
    }
}
