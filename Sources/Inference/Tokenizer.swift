/// The tokenizer a GGUF vocabulary describes, as llama.cpp runs it: control, unknown and
/// user-defined tokens are split out of the text first (`SpecialTokenMatcher`), and the text
/// between them is encoded by the vocabulary's model: byte-level BPE (`tokenizer.ggml.model = gpt2`,
/// `BytePairEncoder`) or SentencePiece (`llama`, `SentencePieceEncoder`).
public final class Tokenizer: Sendable {
    /// ggml's token types (`tokenizer.ggml.token_type`).
    public enum TokenType: Int, Sendable {
        case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// How the text between special tokens becomes tokens.
    enum Model: Sendable {
        case bytePairs(BytePairEncoder)
        case sentencePiece(SentencePieceEncoder)
    }

    public let tokenTypes: [TokenType]
    public let bos: Int32?
    public let eos: Int32?
    /// The end-of-turn token (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`, …), when the vocabulary has one.
    public let eot: Int32?
    /// Every token that ends generation.
    public let endOfGeneration: Set<Int32>
    /// Whether tokenization with `addSpecial` prepends BOS / appends EOS.
    public let addBOS: Bool
    public let addEOS: Bool
    /// SentencePiece's `add_space_prefix`: text at the start or right after a special token is
    /// encoded with a space in front, and decoding drops the first token's leading space. Always
    /// false for BPE.
    public let addSpacePrefix: Bool

    let model: Model
    /// Token texts as stored (GPT-2 byte code points for BPE, ▁ for spaces in SentencePiece),
    /// looked up by their bytes.
    private let vocabulary: VocabularyIndex
    /// Control, unknown and user-defined tokens, found in raw text.
    private let specialTokens: SpecialTokenMatcher
    /// The bytes each token detokenizes to when special tokens are rendered, back to back;
    /// token i's are `pieceBytes[pieceOffsets[i]..<pieceOffsets[i + 1]]` (one allocation, not one per token).
    private let pieceBytes: [UInt8]
    private let pieceOffsets: [Int32]
    /// Whether decoding applies GPT-2's clean-up of spaces (BPE pre-tokenizers that ask for it).
    private let cleansSpaces: Bool

    public var vocabularySize: Int { tokenTypes.count }

    /// A token's text as stored in the vocabulary.
    public func tokenText(_ id: Int32) -> String {
        String(decoding: vocabulary.text(Int(id)), as: UTF8.self)
    }

    /// A byte-level BPE tokenizer from plain vocabulary data (what a GGUF file's `tokenizer.ggml.*` holds).
    /// - Parameters:
    ///   - merges: `"left right"` strings, highest priority first.
    ///   - preTokenizer: the `tokenizer.ggml.pre` name (`smollm`, `gpt2`, `llama3`, `qwen2`, …).
    public convenience init(tokens: [String], types: [Int]?, merges: [String], preTokenizer name: String,
                            bos: Int?, eos: Int?, eot: Int? = nil, addBOS: Bool, addEOS: Bool) throws {
        guard let pre = PreTokenizer(name: name) else {
            throw InferenceError.unsupportedTokenizer(
                "tokenizer.ggml.pre",
                "pre-tokenizer '\(name)' is not supported (supported: \(PreTokenizer.knownNames.joined(separator: ", ")))")
        }
        try self.init(tokens: tokens, types: types, bos: bos, eos: eos, eot: eot, addBOS: addBOS, addEOS: addEOS,
                      addSpacePrefix: false, cleansSpaces: pre.cleanSpaces) { vocabulary in
            .bytePairs(BytePairEncoder(merges: merges, preTokenizer: pre, vocabulary: vocabulary))
        }
    }

    /// A SentencePiece tokenizer from plain vocabulary data.
    /// - Parameters:
    ///   - scores: one per token (`tokenizer.ggml.scores`); pairs forming higher-scored tokens merge first.
    ///   - addSpacePrefix: `tokenizer.ggml.add_space_prefix` (llama.cpp's default for SentencePiece is true).
    /// Throws when a score is missing or not a number, when a byte has no byte-fallback token
    /// (`<0xNN>`), or when a byte-type token's text is not `<0xNN>`.
    public convenience init(sentencePieceTokens tokens: [String], scores: [Float], types: [Int]?,
                            bos: Int?, eos: Int?, eot: Int? = nil, addBOS: Bool, addEOS: Bool,
                            addSpacePrefix: Bool) throws {
        try self.init(tokens: tokens, types: types, bos: bos, eos: eos, eot: eot, addBOS: addBOS, addEOS: addEOS,
                      addSpacePrefix: addSpacePrefix, cleansSpaces: false) { vocabulary in
            .sentencePiece(try SentencePieceEncoder(scores: scores, vocabulary: vocabulary))
        }
    }

    private init(tokens: [String], types: [Int]?, bos: Int?, eos: Int?, eot: Int?, addBOS: Bool, addEOS: Bool,
                 addSpacePrefix: Bool, cleansSpaces: Bool, model makeModel: (VocabularyIndex) throws -> Model) throws {
        guard !tokens.isEmpty else {
            throw InferenceError.invalidMetadata("tokenizer.ggml.tokens", "the vocabulary is empty")
        }
        if let types, types.count != tokens.count {
            throw InferenceError.invalidMetadata("tokenizer.ggml.token_type",
                                                 "has \(types.count) entries for \(tokens.count) tokens")
        }
        func checked(_ id: Int?, _ key: String) throws -> Int32? {
            guard let id else { return nil }
            guard id >= 0 && id < tokens.count else {
                throw InferenceError.invalidMetadata(key, "token id \(id) is outside the vocabulary")
            }
            return Int32(id)
        }
        self.bos = try checked(bos, "tokenizer.ggml.bos_token_id")
        self.eos = try checked(eos, "tokenizer.ggml.eos_token_id")
        let eot = try checked(eot, "tokenizer.ggml.eot_token_id")
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
        self.cleansSpaces = cleansSpaces

        let vocabulary = VocabularyIndex(tokens)
        self.vocabulary = vocabulary
        let model = try makeModel(vocabulary)
        self.model = model

        var tokenTypes = (types ?? []).map { TokenType(rawValue: $0) ?? .undefined }
        if tokenTypes.isEmpty { tokenTypes = Array(repeating: .normal, count: tokens.count) }
        let roles = Self.specialTokenRoles(vocabulary: vocabulary, types: &tokenTypes, eos: self.eos, eot: eot)
        self.eot = roles.eot
        self.endOfGeneration = roles.endOfGeneration
        self.tokenTypes = tokenTypes

        var special: [(id: Int32, text: ArraySlice<UInt8>, userDefined: Bool)] = []
        for (i, type) in tokenTypes.enumerated() where type == .control || type == .userDefined || type == .unknown {
            special.append((Int32(i), vocabulary.text(i), type == .userDefined))
        }
        self.specialTokens = SpecialTokenMatcher(special)

        var bytes: [UInt8] = []
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(tokens.count + 1)
        for (i, type) in tokenTypes.enumerated() {
            let text = vocabulary.text(i)
            switch (type, model) {
            case (.control, _), (.unknown, _), (.userDefined, _):
                bytes.append(contentsOf: text)
            case (.normal, .bytePairs):
                bytes.append(contentsOf: ByteLevelEncoding.decode(tokens[i]))
            case (.normal, .sentencePiece):
                Self.appendReplacingSpaceMarkers(text, to: &bytes)
            case (.byte, .sentencePiece):
                guard let byte = SentencePieceEncoder.byteValue(ofTokenText: text) else {
                    throw InferenceError.invalidMetadata(
                        "tokenizer.ggml.token_type",
                        "token \(i) (\(tokens[i].debugDescription)) is a byte token but its text is not of the form <0xNN>")
                }
                bytes.append(byte)
            case (.byte, .bytePairs), (.undefined, _), (.unused, _):
                break
            }
            offsets.append(Int32(bytes.count))
        }
        self.pieceBytes = bytes
        self.pieceOffsets = offsets
    }

    /// Appends `text` with every ▁ (U+2581) written as a space.
    private static func appendReplacingSpaceMarkers(_ text: ArraySlice<UInt8>, to out: inout [UInt8]) {
        var i = text.startIndex
        while i < text.endIndex {
            if text[i] == 0xE2, i + 2 < text.endIndex, text[i + 1] == 0x96, text[i + 2] == 0x81 {
                out.append(UInt8(ascii: " "))
                i += 3
            } else {
                out.append(text[i])
                i += 1
            }
        }
    }

    // MARK: Encoding

    /// Token ids of `text`. With `parseSpecial`, control-token text such as `<|im_end|>` maps to its
    /// id; user-defined tokens always do. With `addSpecial`, BOS/EOS are added as the model says.
    public func encode(_ text: String, addSpecial: Bool = false, parseSpecial: Bool = false) -> [Int32] {
        var out: [Int32] = []
        if addSpecial && addBOS, let bos { out.append(bos) }
        let bytes = Array(text.utf8)
        // SentencePiece's prefix space goes before text at the start and after each special token.
        var afterSpecial = true
        for fragment in specialTokens.partition(bytes, parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id):
                out.append(id)
                afterSpecial = true
            case .text(let range):
                switch model {
                case .bytePairs(let encoder):
                    encoder.encode(bytes[range], vocabulary: vocabulary, into: &out)
                case .sentencePiece(let encoder):
                    encoder.encode(bytes[range], prefixSpace: addSpacePrefix && afterSpecial,
                                   vocabulary: vocabulary, into: &out)
                }
                afterSpecial = false
            }
        }
        if addSpecial && addEOS, let eos { out.append(eos) }
        return out
    }

    // MARK: Decoding

    /// The bytes of one token. Control and unknown tokens give their text only when `special` is set.
    public func piece(_ id: Int32, special: Bool = true) -> ArraySlice<UInt8> {
        guard id >= 0 && Int(id) < tokenTypes.count else { return [] }
        if !special {
            let t = tokenTypes[Int(id)]
            if t == .control || t == .unknown { return [] }
        }
        return pieceBytes[Int(pieceOffsets[Int(id)])..<Int(pieceOffsets[Int(id) + 1])]
    }

    /// The exact bytes of a token sequence, as llama.cpp's `llama_detokenize` gives them (special
    /// tokens kept in the sequence): with `addSpacePrefix`, the first token's leading space is
    /// dropped. Ids outside the vocabulary throw.
    public func decode(_ ids: [Int32], special: Bool = true) throws -> [UInt8] {
        var out: [UInt8] = []
        var removeSpace = addSpacePrefix
        for id in ids {
            guard id >= 0 && Int(id) < tokenTypes.count else {
                throw InferenceError.tokenOutOfRange(Int(id), vocabularySize: tokenTypes.count)
            }
            let bytes = piece(id, special: special)
            if removeSpace, bytes.first == UInt8(ascii: " ") {
                out.append(contentsOf: bytes.dropFirst())
            } else {
                out.append(contentsOf: bytes)
            }
            removeSpace = false
        }
        if cleansSpaces { out = Self.cleanSpaces(out) }
        return out
    }

    /// The text of a token sequence (invalid UTF-8 replaced by U+FFFD).
    public func decodeText(_ ids: [Int32], special: Bool = true) throws -> String {
        String(decoding: try decode(ids, special: special), as: UTF8.self)
    }

    /// GPT-2's `clean_up_tokenization_spaces`, as llama.cpp applies it: drops the space before
    /// `? ! . ,`, around a lone `'`, and before the contractions `'s 'm 're 've`.
    static func cleanSpaces(_ text: [UInt8]) -> [UInt8] {
        let space = UInt8(ascii: " "), quote = UInt8(ascii: "'")
        var a: [UInt8] = []
        a.reserveCapacity(text.count)
        for (i, x) in text.enumerated() {
            if i > 0, text[i - 1] == space, [UInt8(ascii: "?"), UInt8(ascii: "!"), UInt8(ascii: "."), UInt8(ascii: ",")].contains(x) {
                a.removeLast()
            }
            a.append(x)
        }
        var b: [UInt8] = []
        b.reserveCapacity(a.count)
        var i = 0
        while i < a.count {
            if a[i] == quote, i > 0, i + 1 < a.count, a[i - 1] == space, a[i + 1] == space {
                b.removeLast()
                b.append(quote)
                i += 2
                continue
            }
            b.append(a[i])
            i += 1
        }
        var c: [UInt8] = []
        c.reserveCapacity(b.count)
        for (i, x) in b.enumerated() {
            if x == quote, i > 0, b[i - 1] == space, i + 1 < b.count {
                let x1 = b[i + 1]
                let x2: UInt8? = i + 2 < b.count ? b[i + 2] : nil
                if x1 == UInt8(ascii: "s") || x1 == UInt8(ascii: "m")
                    || (x2 == UInt8(ascii: "e") && (x1 == UInt8(ascii: "r") || x1 == UInt8(ascii: "v"))) {
                    c.removeLast()
                }
            }
            c.append(x)
        }
        return c
    }
}
