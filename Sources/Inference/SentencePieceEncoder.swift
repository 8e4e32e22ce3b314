/// SentencePiece BPE over ordinary text (`tokenizer.ggml.model = llama`), as llama.cpp's
/// llm_tokenizer_spm runs it: spaces become U+2581 ("▁"), the text is split into UTF-8 characters,
/// and adjacent symbols are merged while their concatenation is a token, highest score first
/// (leftmost on ties). A final symbol that is not a token is written as byte-fallback tokens
/// (`<0xNN>`), one per byte.
struct SentencePieceEncoder: Sendable {
    /// Each token's score (`tokenizer.ggml.scores`).
    private let scores: [Float]
    /// The byte-fallback token of each byte.
    private let byteTokens: [Int32]

    /// The UTF-8 of U+2581, which stands for a space in SentencePiece token texts.
    static let spaceMarker: [UInt8] = [0xE2, 0x96, 0x81]

    /// Checks the scores and finds the byte-fallback tokens. Throws when a byte has no token: text
    /// with that byte could not be encoded.
    init(scores: [Float], vocabulary: VocabularyIndex) throws {
        guard scores.count == vocabulary.count else {
            throw InferenceError.invalidMetadata("tokenizer.ggml.scores",
                                                 "has \(scores.count) entries for \(vocabulary.count) tokens")
        }
        if let bad = scores.firstIndex(where: { $0.isNaN }) {
            throw InferenceError.invalidMetadata("tokenizer.ggml.scores", "the score of token \(bad) is not a number (NaN)")
        }
        self.scores = scores
        // llama.cpp's byte_to_token: the `<0xNN>` token, else a token whose text is the byte itself.
        var byteTokens: [Int32] = []
        byteTokens.reserveCapacity(256)
        for b in 0..<256 {
            let name = Self.byteTokenText(UInt8(b))
            guard let id = vocabulary.id(of: name.utf8) ?? vocabulary.id(of: CollectionOfOne(UInt8(b))) else {
                throw InferenceError.invalidMetadata(
                    "tokenizer.ggml.tokens",
                    "the SentencePiece vocabulary has no byte-fallback token \(name); every byte needs one to encode text the other tokens cannot")
            }
            byteTokens.append(id)
        }
        self.byteTokens = byteTokens
    }

    /// `<0xNN>` with upper-case hex digits, as SentencePiece names byte tokens.
    static func byteTokenText(_ byte: UInt8) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        return String(decoding: [UInt8(ascii: "<"), UInt8(ascii: "0"), UInt8(ascii: "x"),
                                 hex[Int(byte >> 4)], hex[Int(byte & 15)], UInt8(ascii: ">")], as: UTF8.self)
    }

    /// The byte a byte token's `<0xNN>` text stands for, or nil when the text has another form.
    static func byteValue(ofTokenText text: some Collection<UInt8>) -> UInt8? {
        let t = Array(text)
        guard t.count == 6, t[0] == UInt8(ascii: "<"), t[1] == UInt8(ascii: "0"), t[2] == UInt8(ascii: "x"),
              t[5] == UInt8(ascii: ">"), let hi = hexDigit(t[3]), let lo = hexDigit(t[4]) else { return nil }
        return hi << 4 | lo
    }

    private static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Appends the tokens of `text`, text with no special tokens in it; `prefixSpace` puts a space
    /// in front first (the `add_space_prefix` rule, applied by the caller's fragment logic).
    func encode(_ text: ArraySlice<UInt8>, prefixSpace: Bool, vocabulary: VocabularyIndex, into out: inout [Int32]) {
        // The text with every space written as ▁.
        var buffer: [UInt8] = []
        buffer.reserveCapacity(text.count + (prefixSpace ? 3 : 0))
        if prefixSpace { buffer.append(contentsOf: Self.spaceMarker) }
        for b in text {
            if b == UInt8(ascii: " ") { buffer.append(contentsOf: Self.spaceMarker) } else { buffer.append(b) }
        }
        guard !buffer.isEmpty else { return }

        // One symbol per UTF-8 character (by its lead byte, as llama.cpp's unicode_len_utf8 counts),
        // chained both ways; a merged-away symbol keeps length 0.
        var start: [Int32] = []
        var length: [Int32] = []
        start.reserveCapacity(buffer.count)
        length.reserveCapacity(buffer.count)
        var offset = 0
        while offset < buffer.count {
            let lead = buffer[offset]
            let width = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            let n = min(width, buffer.count - offset)
            start.append(Int32(offset))
            length.append(Int32(n))
            offset += n
        }
        let count = start.count
        var prev = (0..<count).map { Int32($0) - 1 }
        var next = (0..<count).map { $0 + 1 == count ? Int32(-1) : Int32($0 + 1) }

        let maxLength = vocabulary.maxLength
        var queue = PriorityQueue<ScoredBigram>()
        func tryAdd(_ left: Int32, _ right: Int32) {
            guard left >= 0, right >= 0 else { return }
            let size = length[Int(left)] + length[Int(right)]
            guard size <= maxLength else { return }
            let from = Int(start[Int(left)])
            guard let id = vocabulary.id(of: buffer[from..<from + Int(size)]) else { return }
            queue.push(ScoredBigram(score: scores[Int(id)], left: left, right: right, size: size))
        }
        for i in 1..<max(count, 1) { tryAdd(Int32(i - 1), Int32(i)) }

        while let bigram = queue.pop() {
            let l = Int(bigram.left), r = Int(bigram.right)
            // Stale: a side was merged away or grew since the pair was queued.
            guard length[l] > 0, length[r] > 0, length[l] + length[r] == bigram.size else { continue }
            length[l] += length[r]
            length[r] = 0
            next[l] = next[r]
            if next[r] >= 0 { prev[Int(next[r])] = Int32(l) }
            tryAdd(prev[l], Int32(l))
            tryAdd(Int32(l), next[l])
        }

        var i: Int32 = 0
        while i >= 0 {
            let from = Int(start[Int(i)])
            let piece = buffer[from..<from + Int(length[Int(i)])]
            if let id = vocabulary.id(of: piece) {
                out.append(id)
            } else {
                for b in piece { out.append(byteTokens[Int(b)]) }
            }
            i = next[Int(i)]
        }
    }
}

/// A candidate merge of two adjacent symbols, with the score of the token they would form.
private struct ScoredBigram: Comparable {
    var score: Float
    var left: Int32
    var right: Int32
    /// The two symbols' total length when queued: a different total later means one side changed.
    var size: Int32

    /// Merged first: higher score, then the leftmost.
    static func < (a: ScoredBigram, b: ScoredBigram) -> Bool {
        a.score != b.score ? a.score > b.score : a.left < b.left
    }
}
