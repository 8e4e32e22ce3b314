/// Byte-level BPE tokenizer (`tokenizer.ggml.model = gpt2`) as llama.cpp runs it: special and
/// user-defined tokens split out first, the rest pre-tokenized into words, each word's bytes
/// written as GPT-2 byte code points and merged by rank.
public final class Tokenizer: Sendable {
    /// ggml's token types (`tokenizer.ggml.token_type`).
    public enum TokenType: Int, Sendable {
        case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public let tokenTypes: [TokenType]
    public let bos: Int32?
    public let eos: Int32?
    /// The end-of-turn token (`<|im_end|>`, `<|eot_id|>`, …), when the vocabulary has one.
    public let eot: Int32?
    /// Every token that ends generation.
    public let endOfGeneration: Set<Int32>
    /// Whether tokenization with `addSpecial` prepends BOS / appends EOS.
    public let addBOS: Bool
    public let addEOS: Bool

    let preTokenizer: PreTokenizer
    /// Token texts as stored (GPT-2 byte code points), looked up by their bytes.
    private let vocabulary: VocabularyIndex
    /// Merges by the ids of their two sides: rank in the high 32 bits, the merged token's id in the
    /// low 32. Keyed by ids rather than "left right" strings: a quarter of the memory, no string
    /// building while merging.
    private let merges: [UInt64: UInt64]
    /// The token of each byte's GPT-2 code point (-1 if the vocabulary lacks it).
    private let byteTokens: [Int32]
    /// Control, user-defined and unknown tokens, longest text first, with their UTF-8 bytes.
    private let specialTokens: [(id: Int32, bytes: [UInt8], type: TokenType)]
    /// The bytes each token detokenizes to when special tokens are rendered, back to back;
    /// token i's are `pieceBytes[pieceOffsets[i]..<pieceOffsets[i + 1]]` (one allocation, not one per token).
    private let pieceBytes: [UInt8]
    private let pieceOffsets: [Int32]

    public var vocabularySize: Int { tokenTypes.count }

    /// A token's text as stored in the vocabulary.
    public func tokenText(_ id: Int32) -> String {
        String(decoding: vocabulary.text(Int(id)), as: UTF8.self)
    }

    /// Builds a tokenizer from plain vocabulary data (what a GGUF file's `tokenizer.ggml.*` holds).
    /// - Parameters:
    ///   - merges: `"left right"` strings, highest priority first.
    ///   - preTokenizer: the `tokenizer.ggml.pre` name (`smollm`, `gpt2`, `llama3`, `qwen2`, …).
    public init(tokens: [String], types: [Int]?, merges: [String], preTokenizer name: String,
                bos: Int?, eos: Int?, eot: Int? = nil, addBOS: Bool, addEOS: Bool) throws {
        guard let pre = PreTokenizer(name: name) else {
            throw InferenceError.unsupportedTokenizer(
                "tokenizer.ggml.pre",
                "pre-tokenizer '\(name)' is not supported (supported: \(PreTokenizer.knownNames.joined(separator: ", ")))")
        }
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
        self.preTokenizer = pre
        self.bos = try checked(bos, "tokenizer.ggml.bos_token_id")
        self.eos = try checked(eos, "tokenizer.ggml.eos_token_id")
        self.addBOS = addBOS
        self.addEOS = addEOS

        let vocabulary = VocabularyIndex(tokens)
        self.vocabulary = vocabulary
        self.byteTokens = ByteLevelEncoding.stringForByte.map { vocabulary.id(of: $0.utf8) ?? -1 }

        // A merge whose sides or result are not tokens can never apply to token ids; well-formed
        // vocabularies have none.
        var pairs: [UInt64: UInt64] = [:]
        pairs.reserveCapacity(merges.count)
        for (rank, m) in merges.enumerated() {
            let utf8 = Array(m.utf8)
            guard let space = utf8.firstIndex(of: UInt8(ascii: " ")),
                  let left = vocabulary.id(of: utf8[..<space]),
                  let right = vocabulary.id(of: utf8[(space + 1)...]),
                  let merged = vocabulary.id(of: utf8[..<space] + utf8[(space + 1)...])
            else { continue }
            let key = UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
            if pairs[key] == nil { pairs[key] = UInt64(UInt32(rank)) << 32 | UInt64(UInt32(merged)) }
        }
        self.merges = pairs

        // Token types, with llama.cpp's correction: end-of-turn-looking texts are control tokens.
        var tokenTypes = (types ?? []).map { TokenType(rawValue: $0) ?? .undefined }
        if tokenTypes.isEmpty { tokenTypes = Array(repeating: .normal, count: tokens.count) }
        let eogTexts: Set<String> = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                     "<|eom_id|>", "<EOT>"]
        let eotTexts = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>"]
        var eog = Set<Int32>()
        for text in eogTexts {
            if let id = vocabulary.id(of: text.utf8) {
                eog.insert(id)
                tokenTypes[Int(id)] = .control
            }
        }
        var eotID = try checked(eot, "tokenizer.ggml.eot_token_id")
        if eotID == nil { eotID = eotTexts.lazy.compactMap { vocabulary.id(of: $0.utf8) }.first }
        self.eot = eotID
        if let e = self.eos { eog.insert(e) }
        if let e = eotID { eog.insert(e) }
        self.endOfGeneration = eog
        self.tokenTypes = tokenTypes

        var special: [(id: Int32, bytes: [UInt8], type: TokenType)] = []
        for (i, type) in tokenTypes.enumerated() where type == .control || type == .userDefined || type == .unknown {
            special.append((Int32(i), Array(tokens[i].utf8), type))
        }
        special.sort { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }
        self.specialTokens = special

        var bytes: [UInt8] = []
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(tokens.count + 1)
        for (text, type) in zip(tokens, tokenTypes) {
            switch type {
            case .normal: bytes.append(contentsOf: ByteLevelEncoding.decode(text))
            case .control, .unknown, .userDefined: bytes.append(contentsOf: text.utf8)
            case .undefined, .unused, .byte: break
            }
            offsets.append(Int32(bytes.count))
        }
        self.pieceBytes = bytes
        self.pieceOffsets = offsets
    }

    // MARK: Encoding

    /// Token ids of `text`. With `parseSpecial`, control-token text such as `<|im_end|>` maps to its
    /// id; user-defined tokens always do. With `addSpecial`, BOS/EOS are added as the model says.
    public func encode(_ text: String, addSpecial: Bool = false, parseSpecial: Bool = false) -> [Int32] {
        var out: [Int32] = []
        if addSpecial && addBOS, let bos { out.append(bos) }
        for fragment in partition(Array(text.utf8), parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id): out.append(id)
            case .text(let bytes): encodeOrdinary(bytes, into: &out)
            }
        }
        if addSpecial && addEOS, let eos { out.append(eos) }
        return out
    }

    private enum Fragment {
        case token(Int32)
        case text(ArraySlice<UInt8>)
    }

    /// Splits out special tokens, longest first, each over every remaining raw fragment.
    private func partition(_ bytes: [UInt8], parseSpecial: Bool) -> [Fragment] {
        guard !bytes.isEmpty else { return [] }
        var fragments: [Fragment] = [.text(bytes[...])]
        for special in specialTokens {
            if !parseSpecial && special.type != .userDefined { continue }
            let needle = special.bytes
            guard !needle.isEmpty else { continue }
            var next: [Fragment] = []
            next.reserveCapacity(fragments.count)
            var changed = false
            for fragment in fragments {
                guard case .text(let raw) = fragment else { next.append(fragment); continue }
                var start = raw.startIndex
                var i = raw.startIndex
                while i + needle.count <= raw.endIndex {
                    if raw[i] == needle[0] && raw[i..<i + needle.count].elementsEqual(needle) {
                        if start < i { next.append(.text(raw[start..<i])) }
                        next.append(.token(special.id))
                        changed = true
                        i += needle.count
                        start = i
                    } else {
                        i += 1
                    }
                }
                if start < raw.endIndex { next.append(.text(raw[start..<raw.endIndex])) }
            }
            if changed { fragments = next }
        }
        return fragments
    }

    private func encodeOrdinary(_ bytes: ArraySlice<UInt8>, into out: inout [Int32]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let scalars = Array(text.unicodeScalars)
        var utf8Offsets = [Int](repeating: 0, count: scalars.count + 1)
        for (i, s) in scalars.enumerated() { utf8Offsets[i + 1] = utf8Offsets[i] + UTF8.width(s) }
        let utf8 = Array(text.utf8)
        for word in preTokenizer.split(scalars) {
            let wordBytes = utf8[utf8Offsets[word.lowerBound]..<utf8Offsets[word.upperBound]]
            mergeWord(wordBytes, into: &out)
        }
    }

    /// BPE over one word: repeatedly merges the adjacent pair of lowest rank (leftmost on ties).
    private func mergeWord(_ bytes: ArraySlice<UInt8>, into out: inout [Int32]) {
        if preTokenizer.ignoreMerges, let id = vocabulary.id(of: ByteLevelEncoding.encode(bytes).utf8) {
            out.append(id)
            return
        }
        // A byte the vocabulary has no token for gives nothing (as llama.cpp's fallback does).
        var symbols = bytes.map { byteTokens[Int($0)] }
        if symbols.count > 1 {
            var prev = Array(-1..<(symbols.count - 1))
            var next = Array(1...symbols.count)
            next[symbols.count - 1] = -1
            var queue = BigramQueue()
            func push(_ left: Int, _ right: Int) {
                guard left >= 0, right >= 0, symbols[left] >= 0, symbols[right] >= 0 else { return }
                let key = UInt64(UInt32(symbols[left])) << 32 | UInt64(UInt32(symbols[right]))
                if let merge = merges[key] {
                    queue.push(Bigram(rank: Int32(truncatingIfNeeded: merge >> 32), left: Int32(left), right: Int32(right),
                                      leftToken: symbols[left], rightToken: symbols[right],
                                      merged: Int32(truncatingIfNeeded: merge & 0xFFFF_FFFF)))
                }
            }
            for i in 1..<symbols.count { push(i - 1, i) }
            while let bigram = queue.pop() {
                let l = Int(bigram.left), r = Int(bigram.right)
                // Stale: one side already merged away or changed, or no longer adjacent.
                guard next[l] == r, symbols[l] == bigram.leftToken, symbols[r] == bigram.rightToken else { continue }
                symbols[l] = bigram.merged
                symbols[r] = -2 // merged away
                next[l] = next[r]
                if next[r] >= 0 { prev[next[r]] = l }
                push(prev[l], l)
                push(l, next[l])
            }
            var i = 0
            while i >= 0 {
                if symbols[i] >= 0 { out.append(symbols[i]) }
                i = next[i]
            }
        } else if let only = symbols.first, only >= 0 {
            out.append(only)
        }
    }

    // MARK: Decoding

    /// The bytes of one token. Control tokens give their text only when `special` is set.
    public func piece(_ id: Int32, special: Bool = true) -> ArraySlice<UInt8> {
        guard id >= 0 && Int(id) < tokenTypes.count else { return [] }
        if !special {
            let t = tokenTypes[Int(id)]
            if t == .control || t == .unknown { return [] }
        }
        return pieceBytes[Int(pieceOffsets[Int(id)])..<Int(pieceOffsets[Int(id) + 1])]
    }

    /// The exact bytes of a token sequence. Ids outside the vocabulary throw.
    public func decode(_ ids: [Int32], special: Bool = true) throws -> [UInt8] {
        var out: [UInt8] = []
        for id in ids {
            guard id >= 0 && Int(id) < tokenTypes.count else {
                throw InferenceError.tokenOutOfRange(Int(id), vocabularySize: tokenTypes.count)
            }
            out.append(contentsOf: piece(id, special: special))
        }
        if preTokenizer.cleanSpaces { out = Self.cleanSpaces(out) }
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

/// A candidate merge of two adjacent symbols.
private struct Bigram {
    var rank: Int32
    var left: Int32
    var right: Int32
    var leftToken: Int32
    var rightToken: Int32
    var merged: Int32

    /// Lower rank first, then the leftmost.
    func before(_ other: Bigram) -> Bool {
        rank != other.rank ? rank < other.rank : left < other.left
    }
}

/// A binary min-heap of bigrams.
private struct BigramQueue {
    private var items: [Bigram] = []

    mutating func push(_ b: Bigram) {
        items.append(b)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].before(items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Bigram? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l].before(items[m]) { m = l }
                if r < items.count && items[r].before(items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return first
    }
}

/// Byte strings (token texts) back to back, with an open-addressing hash index from text to id.
/// About 1.2 MB for a 49k vocabulary, where `[String: Int32]` plus `[String]` took several MB.
struct VocabularyIndex: Sendable {
    private let bytes: [UInt8]
    private let offsets: [Int32]
    /// Token id per slot, -1 for empty; a power-of-two count at most half full.
    private let slots: [Int32]

    init(_ texts: [String]) {
        var bytes: [UInt8] = []
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(texts.count + 1)
        for t in texts {
            bytes.append(contentsOf: t.utf8)
            offsets.append(Int32(bytes.count))
        }
        var capacity = 16
        while capacity < texts.count * 2 { capacity <<= 1 }
        var slots = [Int32](repeating: -1, count: capacity)
        let mask = capacity - 1
        for id in 0..<texts.count {
            let text = bytes[Int(offsets[id])..<Int(offsets[id + 1])]
            var i = Int(truncatingIfNeeded: Self.hash(text)) & mask
            while slots[i] >= 0 {
                let other = Int(slots[i])
                if bytes[Int(offsets[other])..<Int(offsets[other + 1])].elementsEqual(text) { break } // a later duplicate wins
                i = (i + 1) & mask
            }
            slots[i] = Int32(id)
        }
        self.bytes = bytes
        self.offsets = offsets
        self.slots = slots
    }

    var count: Int { offsets.count - 1 }

    func text(_ id: Int) -> ArraySlice<UInt8> {
        guard id >= 0 && id < count else { return [] }
        return bytes[Int(offsets[id])..<Int(offsets[id + 1])]
    }

    func id(of text: some Collection<UInt8>) -> Int32? {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: Self.hash(text)) & mask
        while slots[i] >= 0 {
            let id = Int(slots[i])
            if bytes[Int(offsets[id])..<Int(offsets[id + 1])].elementsEqual(text) { return Int32(id) }
            i = (i + 1) & mask
        }
        return nil
    }

    /// FNV-1a, 64-bit.
    private static func hash(_ text: some Collection<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }
}
