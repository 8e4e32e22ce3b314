/// Byte-level BPE over ordinary text (`tokenizer.ggml.model = gpt2`), as llama.cpp's
/// llm_tokenizer_bpe runs it: the text pre-tokenized into words, each word's bytes written as GPT-2
/// byte code points and merged by rank.
struct BytePairEncoder: Sendable {
    let preTokenizer: PreTokenizer
    /// Merges by the ids of their two sides: rank in the high 32 bits, the merged token's id in the
    /// low 32. Keyed by ids rather than "left right" strings: a quarter of the memory, no string
    /// building while merging.
    private let merges: [UInt64: UInt64]
    /// The token of each byte's GPT-2 code point (-1 if the vocabulary lacks it).
    private let byteTokens: [Int32]

    /// - Parameter merges: `"left right"` strings, highest priority first.
    init(merges: [String], preTokenizer: PreTokenizer, vocabulary: VocabularyIndex) {
        self.preTokenizer = preTokenizer
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
    }

    /// Appends the tokens of `bytes`, text with no special tokens in it.
    func encode(_ bytes: ArraySlice<UInt8>, vocabulary: VocabularyIndex, into out: inout [Int32]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let scalars = Array(text.unicodeScalars)
        var utf8Offsets = [Int](repeating: 0, count: scalars.count + 1)
        for (i, s) in scalars.enumerated() { utf8Offsets[i + 1] = utf8Offsets[i] + UTF8.width(s) }
        let utf8 = Array(text.utf8)
        for word in preTokenizer.split(scalars) {
            let wordBytes = utf8[utf8Offsets[word.lowerBound]..<utf8Offsets[word.upperBound]]
            mergeWord(wordBytes, vocabulary: vocabulary, into: &out)
        }
    }

    /// BPE over one word: repeatedly merges the adjacent pair of lowest rank (leftmost on ties).
    private func mergeWord(_ bytes: ArraySlice<UInt8>, vocabulary: VocabularyIndex, into out: inout [Int32]) {
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
            var queue = PriorityQueue<Bigram>()
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
}

/// A candidate merge of two adjacent symbols.
private struct Bigram: Comparable {
    var rank: Int32
    var left: Int32
    var right: Int32
    var leftToken: Int32
    var rightToken: Int32
    var merged: Int32

    /// Merged first: lower rank, then the leftmost.
    static func < (a: Bigram, b: Bigram) -> Bool {
        a.rank != b.rank ? a.rank < b.rank : a.left < b.left
    }
}
