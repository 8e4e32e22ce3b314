/// Splits text into the words byte-level BPE merges within, as `tokenizer.ggml.pre` names.
///
/// Each kind is a hand-written matcher for the regular expression the model's tokenizer uses
/// (the same expressions llama.cpp lists in llama-vocab.cpp), with Unicode categories taken from
/// `Unicode.Scalar.Properties`:
/// - `gpt2`: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// - `digitsThenGPT2` (SmolLM, StarCoder): every `\p{N}` code point on its own first, then `gpt2`
///   within each remaining piece.
/// - `llama3` (and `qwen2` with one digit per number):
///   `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
struct PreTokenizer: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case gpt2
        case digitsThenGPT2
        case llama3(maxDigits: Int)
    }

    let kind: Kind
    /// Whether this tokenizer family merges a word that is itself a token without running BPE.
    let ignoreMerges: Bool
    /// Whether detokenization applies the GPT-2 clean-up of spaces before punctuation.
    let cleanSpaces: Bool

    /// The pre-tokenizer llama.cpp uses for a `tokenizer.ggml.pre` value, or nil when unknown.
    init?(name: String) {
        switch name {
        case "gpt2", "gpt-2", "mpt", "olmo", "jais", "trillion":
            self.init(kind: .gpt2, ignoreMerges: false, cleanSpaces: true)
        case "smollm":
            self.init(kind: .digitsThenGPT2, ignoreMerges: false, cleanSpaces: false)
        case "starcoder", "refact", "codeshell", "exaone", "minerva-7b":
            self.init(kind: .digitsThenGPT2, ignoreMerges: false, cleanSpaces: true)
        case "command-r":
            self.init(kind: .digitsThenGPT2, ignoreMerges: false, cleanSpaces: false)
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "smaug-bpe":
            self.init(kind: .llama3(maxDigits: 3), ignoreMerges: true, cleanSpaces: false)
        case "qwen2", "qwen2.5", "qwen-2.5", "deepseek-r1-qwen", "stablelm2", "hunyuan":
            self.init(kind: .llama3(maxDigits: 1), ignoreMerges: false, cleanSpaces: false)
        default:
            return nil
        }
    }

    init(kind: Kind, ignoreMerges: Bool, cleanSpaces: Bool) {
        self.kind = kind
        self.ignoreMerges = ignoreMerges
        self.cleanSpaces = cleanSpaces
    }

    /// The names `init(name:)` accepts, for error messages.
    static let knownNames = ["smollm", "gpt2", "llama3", "llama-bpe", "qwen2", "starcoder", "command-r"]

    /// Splits `scalars` into consecutive, non-empty word ranges covering all of it.
    func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        let classes = scalars.map(CharClass.init)
        var words: [Range<Int>] = []
        words.reserveCapacity(scalars.count / 3 + 1)
        switch kind {
        case .gpt2:
            Self.splitGPT2(scalars, classes, 0..<scalars.count, into: &words)
        case .digitsThenGPT2:
            var start = 0
            for i in 0..<scalars.count where classes[i] == .number {
                if start < i { Self.splitGPT2(scalars, classes, start..<i, into: &words) }
                words.append(i..<i + 1)
                start = i + 1
            }
            if start < scalars.count { Self.splitGPT2(scalars, classes, start..<scalars.count, into: &words) }
        case .llama3(let maxDigits):
            Self.splitLlama3(scalars, classes, maxDigits: maxDigits, into: &words)
        }
        return words
    }

    // MARK: Matchers

    private static func splitGPT2(_ cpts: [Unicode.Scalar], _ classes: [CharClass], _ range: Range<Int>,
                                  into words: inout [Range<Int>]) {
        let end = range.upperBound
        func cls(_ i: Int) -> CharClass { i < end ? classes[i] : .outOfRange }
        var pos = range.lowerBound
        while pos < end {
            let start = pos
            let c = cpts[pos].value
            // 's|'t|'re|'ve|'m|'ll|'d
            if c == 0x27, pos + 1 < end {
                let n1 = cpts[pos + 1].value
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 {  // s t m d
                    words.append(start..<pos + 2); pos += 2; continue
                }
                if pos + 2 < end {
                    let n2 = cpts[pos + 2].value
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {  // re ve ll
                        words.append(start..<pos + 3); pos += 3; continue
                    }
                }
            }
            let lead = c == 0x20 ? cls(pos + 1) : classes[pos]
            //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+
            if lead == .letter || lead == .number || lead == .other {
                if c == 0x20 { pos += 1 }
                while cls(pos) == lead { pos += 1 }
                words.append(start..<pos); continue
            }
            // \s+(?!\S) | \s+
            var spaces = 0
            while cls(pos + spaces) == .whitespace { spaces += 1 }
            pos = afterWhitespace(pos, spaces: spaces, end: end)
            words.append(start..<pos)
        }
    }

    /// `\s+(?!\S)` then `\s+`: a run of `spaces` whitespace at `pos` stops one short of the word
    /// that follows (which takes the last space) or runs to the text's end; no whitespace at all
    /// (a character no other branch took) advances by one.
    private static func afterWhitespace(_ pos: Int, spaces: Int, end: Int) -> Int {
        if spaces > 1 && pos + spaces < end { return pos + spaces - 1 }
        return pos + max(spaces, 1)
    }

    private static func splitLlama3(_ cpts: [Unicode.Scalar], _ classes: [CharClass], maxDigits: Int,
                                    into words: inout [Range<Int>]) {
        let end = cpts.count
        func cls(_ i: Int) -> CharClass { i < end ? classes[i] : .outOfRange }
        func cpt(_ i: Int) -> UInt32 { i < end ? cpts[i].value : UInt32.max }
        func lower(_ v: UInt32) -> UInt32 { (v >= 0x41 && v <= 0x5A) ? v + 0x20 : v }
        func isCRLF(_ v: UInt32) -> Bool { v == 0x0D || v == 0x0A }
        var pos = 0
        while pos < end {
            let start = pos
            let c = cpts[pos].value
            let flags = classes[pos]
            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if c == 0x27, pos + 1 < end {
                let n1 = lower(cpts[pos + 1].value)
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 {
                    words.append(start..<pos + 2); pos += 2; continue
                }
                if pos + 2 < end {
                    let n2 = lower(cpts[pos + 2].value)
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                        words.append(start..<pos + 3); pos += 3; continue
                    }
                }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(isCRLF(c) || flags == .number) {
                if flags == .letter || cls(pos + 1) == .letter {
                    pos += 1
                    while cls(pos) == .letter { pos += 1 }
                    words.append(start..<pos); continue
                }
            }
            // \p{N}{1,maxDigits}
            if flags == .number {
                var groupStart = pos
                while cls(pos) == .number {
                    pos += 1
                    if pos - groupStart >= maxDigits {
                        words.append(groupStart..<pos)
                        groupStart = pos
                    }
                }
                if groupStart < pos { words.append(groupStart..<pos) }
                continue
            }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            let lead = c == 0x20 ? cls(pos + 1) : flags
            if lead == .other {
                if c == 0x20 { pos += 1 }
                while cls(pos) == .other { pos += 1 }
                while isCRLF(cpt(pos)) { pos += 1 }
                words.append(start..<pos); continue
            }
            // \s*[\r\n]+ | \s+(?!\S) | \s+
            var spaces = 0
            var lastLineEnd = 0
            while cls(pos + spaces) == .whitespace {
                if isCRLF(cpts[pos + spaces].value) { lastLineEnd = pos + spaces + 1 }
                spaces += 1
            }
            pos = lastLineEnd > 0 ? lastLineEnd : afterWhitespace(pos, spaces: spaces, end: end)
            words.append(start..<pos)
        }
    }
}

/// The regex classes the pre-tokenizers distinguish: `\p{L}`, `\p{N}`, `\s`, and everything else.
enum CharClass: UInt8, Sendable {
    case letter, number, whitespace, other, outOfRange

    init(_ scalar: Unicode.Scalar) {
        let v = scalar.value
        if v < 0x80 {
            switch v {
            case 0x09...0x0D, 0x20: self = .whitespace
            case 0x30...0x39: self = .number
            case 0x41...0x5A, 0x61...0x7A: self = .letter
            default: self = .other
            }
            return
        }
        let p = scalar.properties
        if p.isWhitespace { self = .whitespace; return }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            self = .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            self = .number
        default:
            self = .other
        }
    }
}
