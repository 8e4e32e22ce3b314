import Foundation
import GGUF
import OutpostTesting
import Testing
@testable import Inference

/// The SentencePiece tokenizer (`tokenizer.ggml.model = llama`) against llama.cpp's own
/// tokenization and detokenization of Gemma 3 270M's 262,144-token vocabulary
/// (Fixtures/gemma3-tokenize.json, made by scripts/gen-gemma-tokenize-fixture.py), on a small
/// hand-made vocabulary, and its refusal of malformed vocabularies.
@Suite struct SentencePieceTokenizerTests {
    /// The Gemma tokenizer as published (`add_space_prefix` false) and the same vocabulary with
    /// `add_space_prefix` true, the two halves of the fixture.
    static let gemma: Result<[Bool: Tokenizer], Error> = TestSupport.gemmaFile.flatMap { file in
        Result {
            let published = try Tokenizer(gguf: file)
            let scores = (file.array("tokenizer.ggml.scores") ?? []).map { Float($0.doubleValue ?? .nan) }
            let prefixed = try Tokenizer(
                sentencePieceTokens: file.stringArray("tokenizer.ggml.tokens") ?? [], scores: scores,
                types: file.intArray("tokenizer.ggml.token_type"),
                bos: file.int("tokenizer.ggml.bos_token_id"), eos: file.int("tokenizer.ggml.eos_token_id"),
                addBOS: true, addEOS: false, addSpacePrefix: true)
            return [false: published, true: prefixed]
        }
    }

    static func fixture() throws -> [String: Any] {
        try #require(try TestSupport.fixture("gemma3-tokenize.json") as? [String: Any])
    }

    @Test func encodingMatchesLlamaCpp() throws {
        let tokenizers = try Self.gemma.get()
        let cases = try #require(try Self.fixture()["tokenize"] as? [[String: Any]])
        #expect(cases.count >= 300)
        var prefixedCases = 0
        for c in cases {
            let text = c["text"] as! String
            let addBOS = c["add_bos"] as! Bool, special = c["special"] as! Bool, prefix = c["add_space_prefix"] as! Bool
            let expected = (c["ids"] as! [Int]).map(Int32.init)
            let ids = tokenizers[prefix]!.encode(text, addSpecial: addBOS, parseSpecial: special)
            #expect(ids == expected,
                    "tokenize \(text.debugDescription) add_bos=\(addBOS) special=\(special) add_space_prefix=\(prefix)")
            if prefix { prefixedCases += 1 }
        }
        #expect(prefixedCases > 0 && prefixedCases < cases.count)
    }

    @Test func decodingMatchesLlamaCpp() throws {
        let tokenizers = try Self.gemma.get()
        let cases = try #require(try Self.fixture()["detokenize"] as? [[String: Any]])
        #expect(cases.count >= 300)
        for c in cases {
            let ids = (c["ids"] as! [Int]).map(Int32.init)
            let special = c["special"] as! Bool, prefix = c["add_space_prefix"] as! Bool
            let tokenizer = tokenizers[prefix]!
            #expect(try tokenizer.decode(ids, special: special) == hexBytes(c["bytes_hex"] as! String),
                    "detokenize \(ids) special=\(special) add_space_prefix=\(prefix)")
            #expect(try tokenizer.decodeText(ids, special: special) == c["text"] as! String,
                    "detokenize text \(ids) special=\(special) add_space_prefix=\(prefix)")
        }
    }

    @Test func gemmaVocabulary() throws {
        let tokenizer = try TestSupport.gemmaTokenizer.get()
        guard case .sentencePiece = tokenizer.model else {
            Issue.record("Gemma's vocabulary did not give a SentencePiece tokenizer")
            return
        }
        #expect(tokenizer.vocabularySize == 262_144)
        #expect(tokenizer.bos == 2 && tokenizer.eos == 1)
        #expect(tokenizer.addBOS && !tokenizer.addEOS && !tokenizer.addSpacePrefix)
        #expect(tokenizer.eot == 106) // <end_of_turn>
        #expect(tokenizer.endOfGeneration.isSuperset(of: [1, 106]))
        // llama.cpp's end-of-generation list names `</s>`, so Gemma 3's user-defined `</s>` is a
        // control token there (parsed only with special parsing); `<s>` stays user-defined.
        #expect(tokenizer.tokenTypes[212] == .control && tokenizer.tokenText(212) == "</s>")
        #expect(tokenizer.tokenTypes[203] == .userDefined && tokenizer.tokenText(203) == "<s>")

        let chat = "<start_of_turn>user\nhi<end_of_turn>\n"
        #expect(tokenizer.encode(chat, addSpecial: true, parseSpecial: true) == [2, 105, 2364, 107, 2202, 106, 107])
        #expect(try tokenizer.decodeText([2, 105, 2364, 107, 2202, 106, 107]) == "<bos>" + chat)
        #expect(try tokenizer.decodeText([2, 105, 2364, 107, 2202, 106, 107], special: false) == "user\nhi\n")
        #expect(tokenizer.encode("Hello world") == [9259, 1902]) // "Hello", "▁world"
        #expect(Array(tokenizer.piece(1902)) == Array(" world".utf8))
        let byteE4: Int32 = 238 + 0xE4
        #expect(Array(tokenizer.piece(byteE4)) == [0xE4])
        #expect(tokenizer.tokenText(byteE4) == "<0xE4>")
        #expect(tokenizer.piece(1, special: false).isEmpty)
        #expect(throws: InferenceError.self) { try tokenizer.decode([262_144]) }
    }

    // MARK: A hand-made vocabulary

    /// `<unk> <s> </s>`, the 256 byte tokens, then a few pieces with scores chosen so that the
    /// order of merges decides the result.
    static func tinyVocabulary(pieces: [(String, Float)], dropByte: UInt8? = nil)
        -> (tokens: [String], scores: [Float], types: [Int]) {
        var tokens = ["<unk>", "<s>", "</s>"], scores: [Float] = [0, 0, 0], types = [2, 3, 3]
        for b in 0...255 where UInt8(b) != dropByte {
            tokens.append(SentencePieceEncoder.byteTokenText(UInt8(b)))
            scores.append(0)
            types.append(6)
        }
        for (text, score) in pieces {
            tokens.append(text)
            scores.append(score)
            types.append(1)
        }
        return (tokens, scores, types)
    }

    static func tiny(_ pieces: [(String, Float)], addSpacePrefix: Bool = true) throws -> Tokenizer {
        let v = tinyVocabulary(pieces: pieces)
        return try Tokenizer(sentencePieceTokens: v.tokens, scores: v.scores, types: v.types, bos: 1, eos: 2,
                             addBOS: true, addEOS: false, addSpacePrefix: addSpacePrefix)
    }

    @Test func mergesFollowScores() throws {
        let pieces: [(String, Float)] = [("▁", -1), ("a", -1), ("b", -1), ("c", -1), ("▁a", -2), ("▁ab", -3),
                                         ("bc", -5), ("abc", -1)]
        let t = try Self.tiny(pieces)
        func id(_ text: String) -> Int32 { Int32(259 + pieces.firstIndex { $0.0 == text }!) }
        // "▁abc": ▁a (-2) merges first, then ▁ab (-3); bc (-5) never gets its turn.
        #expect(t.encode("abc") == [id("▁ab"), id("c")])
        #expect(t.encode("abc", addSpecial: true) == [1, id("▁ab"), id("c")])
        // Preferring bc: ▁ + a + bc, then a + bc = abc (-1) beats ▁a (-2).
        let preferBC = try Self.tiny(pieces.map { $0.0 == "bc" ? ("bc", -0.5) : $0 })
        #expect(preferBC.encode("abc") == [id("▁"), id("abc")])
        // Without the prefix space the text starts with "a".
        let noPrefix = try Self.tiny(pieces, addSpacePrefix: false)
        #expect(noPrefix.encode("abc") == [id("abc")])
        // A character no token covers falls back to its UTF-8 bytes (<0xC3> <0xA9> for é).
        let e1: Int32 = 3 + 0xC3, e2: Int32 = 3 + 0xA9
        #expect(t.encode("aé") == [id("▁a"), e1, e2])
        // Special parsing, and the prefix space again after a special token.
        #expect(t.encode("a</s>a", parseSpecial: true) == [id("▁a"), 2, id("▁a")])
        #expect(t.encode("a</s>a", parseSpecial: false).count > 3)
    }

    @Test func decodingDropsThePrefixSpace() throws {
        let pieces: [(String, Float)] = [("▁", -1), ("a", -1), ("▁a", -2)]
        let t = try Self.tiny(pieces)
        let spaceA: Int32 = 259 + 2
        #expect(try t.decodeText([spaceA, spaceA]) == "a a")
        // As llama_detokenize with remove_special false: the first token (here BOS) takes the strip.
        #expect(try t.decodeText([1, spaceA]) == "<s> a")
        #expect(try t.decodeText([1, spaceA], special: false) == " a")
        let e1: Int32 = 3 + 0xC3, e2: Int32 = 3 + 0xA9
        #expect(try t.decode([e1, e2]) == [0xC3, 0xA9])
        let noPrefix = try Self.tiny(pieces, addSpacePrefix: false)
        #expect(try noPrefix.decodeText([spaceA, spaceA]) == " a a")
    }

    /// The one-pass matcher against llama.cpp's way, token by token (longest first, then lowest
    /// id), each at its leftmost non-overlapping occurrences in the text left, on random text over
    /// a small alphabet where the tokens overlap in every way.
    @Test func partitionMatchesTokenByTokenSearch() {
        let texts = ["ab", "bc", "abc", "b", "ca", "cab", "a", "aa", "aaa", "bcab"]
        let userDefined: Set<Int> = [1, 4, 7]
        let tokens = texts.enumerated().map { (Int32($0.offset), Array($0.element.utf8)[...], userDefined.contains($0.offset)) }
        let matcher = SpecialTokenMatcher(tokens)

        func reference(_ bytes: [UInt8], parseSpecial: Bool) -> [SpecialTokenMatcher.Fragment] {
            guard !bytes.isEmpty else { return [] }
            var fragments: [SpecialTokenMatcher.Fragment] = [.text(0..<bytes.count)]
            let order = texts.indices.sorted { texts[$0].utf8.count != texts[$1].utf8.count
                ? texts[$0].utf8.count > texts[$1].utf8.count : $0 < $1 }
            for t in order where parseSpecial || userDefined.contains(t) {
                let needle = Array(texts[t].utf8)
                var next: [SpecialTokenMatcher.Fragment] = []
                for fragment in fragments {
                    guard case .text(let range) = fragment else { next.append(fragment); continue }
                    var from = range.lowerBound, i = range.lowerBound
                    while i + needle.count <= range.upperBound {
                        if Array(bytes[i..<i + needle.count]) == needle {
                            if from < i { next.append(.text(from..<i)) }
                            next.append(.token(Int32(t)))
                            i += needle.count
                            from = i
                        } else {
                            i += 1
                        }
                    }
                    if from < range.upperBound { next.append(.text(from..<range.upperBound)) }
                }
                fragments = next
            }
            return fragments
        }

        var rng = SplitMix64(seed: 0x5350_4D00)
        let alphabet = Array("abcx".utf8)
        for round in 0..<3000 {
            let bytes = (0..<Int.random(in: 0...24, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            for parseSpecial in [false, true] {
                #expect(matcher.partition(bytes, parseSpecial: parseSpecial) == reference(bytes, parseSpecial: parseSpecial),
                        "round \(round): \(String(decoding: bytes, as: UTF8.self)) parseSpecial=\(parseSpecial)")
            }
        }
    }

    // MARK: Malformed vocabularies

    /// Runs `body`, which must throw an `InferenceError` whose description names `needle`.
    static func expectRefusal(_ needle: String, _ comment: String, _ body: () throws -> Tokenizer) {
        do {
            _ = try body()
            Issue.record("\(comment): accepted")
        } catch let error as InferenceError {
            #expect(error.description.contains(needle), "\(comment): \(error)")
        } catch {
            Issue.record("\(comment): threw \(type(of: error)), not InferenceError: \(error)")
        }
    }

    @Test func malformedVocabulariesAreRefused() throws {
        let v = Self.tinyVocabulary(pieces: [("▁", -1), ("a", -1)])
        Self.expectRefusal("tokenizer.ggml.scores", "one score short") {
            try Tokenizer(sentencePieceTokens: v.tokens, scores: Array(v.scores.dropLast()), types: v.types,
                          bos: 1, eos: 2, addBOS: true, addEOS: false, addSpacePrefix: true)
        }
        Self.expectRefusal("NaN", "a NaN score") {
            try Tokenizer(sentencePieceTokens: v.tokens, scores: v.scores.dropLast() + [.nan], types: v.types,
                          bos: 1, eos: 2, addBOS: true, addEOS: false, addSpacePrefix: true)
        }
        let noA = Self.tinyVocabulary(pieces: [("▁", -1), ("a", -1)], dropByte: 0x41)
        Self.expectRefusal("<0x41>", "byte token <0x41> missing") {
            try Tokenizer(sentencePieceTokens: noA.tokens, scores: noA.scores, types: noA.types,
                          bos: 1, eos: 2, addBOS: true, addEOS: false, addSpacePrefix: true)
        }
        var badByte = v.types
        badByte[badByte.count - 1] = 6 // "a" typed as a byte token
        Self.expectRefusal("<0xNN>", "byte token with another text") {
            try Tokenizer(sentencePieceTokens: v.tokens, scores: v.scores, types: badByte,
                          bos: 1, eos: 2, addBOS: true, addEOS: false, addSpacePrefix: true)
        }
        Self.expectRefusal("tokenizer.ggml.bos_token_id", "BOS outside the vocabulary") {
            try Tokenizer(sentencePieceTokens: v.tokens, scores: v.scores, types: v.types,
                          bos: v.tokens.count, eos: 2, addBOS: true, addEOS: false, addSpacePrefix: true)
        }
    }

    @Test func malformedGGUFVocabulariesAreRefused() throws {
        let v = Self.tinyVocabulary(pieces: [("▁", -1), ("a", -1)])
        func file(model: String, scores: GGUFValue?) throws -> GGUFFile {
            var kv: [(String, GGUFValue)] = [
                ("tokenizer.ggml.model", .string(model)),
                ("tokenizer.ggml.tokens", .array(elementType: .string, values: v.tokens.map { .string($0) })),
                ("tokenizer.ggml.token_type", .array(elementType: .int32, values: v.types.map { .int32(Int32($0)) })),
            ]
            if let scores { kv.append(("tokenizer.ggml.scores", scores)) }
            return try GGUFFile(bytes: TinyGGUF.bytes(kv), name: "tiny.gguf")
        }
        let floats = GGUFValue.array(elementType: .float32, values: v.scores.map { .float32($0) })
        // The well-formed file loads, with llama.cpp's SentencePiece defaults.
        let good = try Tokenizer(gguf: try file(model: "llama", scores: floats))
        #expect(good.bos == 1 && good.eos == 2 && good.addBOS && good.addSpacePrefix)
        #expect(good.encode("a") == [Int32(v.tokens.count - 2), Int32(v.tokens.count - 1)]) // ▁, a

        Self.expectRefusal("tokenizer.ggml.scores", "scores missing") {
            try Tokenizer(gguf: try file(model: "llama", scores: nil))
        }
        Self.expectRefusal("tokenizer.ggml.scores", "scores of the wrong type") {
            try Tokenizer(gguf: try file(model: "llama", scores: .array(elementType: .string,
                                                                        values: v.scores.map { .string("\($0)") })))
        }
        Self.expectRefusal("tokenizer.ggml.scores", "scores short") {
            try Tokenizer(gguf: try file(model: "llama", scores: .array(elementType: .float32,
                                                                        values: v.scores.dropLast().map { .float32($0) })))
        }
        Self.expectRefusal("'bert' is not supported", "an unsupported model") {
            try Tokenizer(gguf: try file(model: "bert", scores: floats))
        }
    }

    /// Gemma's own vocabulary with one byte token renamed: refused at load, not at the first text
    /// that needs the byte. (Without `<0x41>` it would still load: as in llama.cpp, the token "A"
    /// stands in for that byte; no token can stand in for a byte of 0x80 or above.)
    @Test func gemmaWithoutAByteTokenIsRefused() throws {
        let file = try TestSupport.gemmaFile.get()
        var tokens = try #require(file.stringArray("tokenizer.ggml.tokens"))
        let scores = (file.array("tokenizer.ggml.scores") ?? []).map { Float($0.doubleValue ?? .nan) }
        let index = try #require(tokens.firstIndex(of: "<0x80>"))
        tokens[index] = "<0x80>?"
        Self.expectRefusal("<0x80>", "Gemma without <0x80>") {
            var types = file.intArray("tokenizer.ggml.token_type") ?? []
            types[index] = 1
            return try Tokenizer(sentencePieceTokens: tokens, scores: scores, types: types, bos: 2, eos: 1,
                                 addBOS: true, addEOS: false, addSpacePrefix: false)
        }
    }
}

/// A GGUF v3 image with metadata only: enough for the tokenizer.
private enum TinyGGUF {
    static func bytes(_ kv: [(String, GGUFValue)]) -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8) }
        func value(_ v: GGUFValue) {
            switch v {
            case .string(let s): string(s)
            case .int32(let i): u32(UInt32(bitPattern: i))
            case .float32(let f): u32(f.bitPattern)
            case .array(let type, let values):
                u32(type.rawValue)
                u64(UInt64(values.count))
                values.forEach(value)
            default: fatalError("TinyGGUF writes strings, int32, float32 and arrays of them")
            }
        }
        func type(_ v: GGUFValue) -> GGUFValueType {
            switch v {
            case .string: .string
            case .int32: .int32
            case .float32: .float32
            default: .array
            }
        }
        u32(0x4655_4747) // "GGUF"
        u32(3)
        u64(0) // tensors
        u64(UInt64(kv.count))
        for (key, v) in kv {
            string(key)
            u32(type(v).rawValue)
            value(v)
        }
        while out.count % 32 != 0 { out.append(0) }
        return out
    }
}
