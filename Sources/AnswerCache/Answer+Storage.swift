import OutpostCore

/// The stored form of an answer: a format byte, the finish reason, two token counts (32-bit
/// little-endian) and the UTF-8 text. Decoding checks every field, so a damaged row is an error.
extension Answer {
    static let storageFormat: UInt8 = 1
    static let storageHeaderBytes = 10

    var storageBytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Self.storageHeaderBytes + text.utf8.count)
        out.append(Self.storageFormat)
        out.append(finishReason == .stop ? 0 : 1)
        for value in [promptTokens, completionTokens] {
            let v = UInt32(clamping: max(0, value))
            out.append(contentsOf: [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8),
                                    UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 24)])
        }
        out.append(contentsOf: text.utf8)
        return out
    }

    init(storageBytes bytes: [UInt8]) throws(AnswerCacheError) {
        guard bytes.count >= Self.storageHeaderBytes else {
            throw .corruptValue("\(bytes.count) bytes, shorter than the \(Self.storageHeaderBytes)-byte header")
        }
        guard bytes[0] == Self.storageFormat else { throw .corruptValue("unknown format \(bytes[0])") }
        let reason: FinishReason
        switch bytes[1] {
        case 0: reason = .stop
        case 1: reason = .length
        default: throw .corruptValue("unknown finish reason \(bytes[1])")
        }
        func u32(_ at: Int) -> Int {
            Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
        }
        guard let text = String(validating: bytes[Self.storageHeaderBytes...], as: UTF8.self) else {
            throw .corruptValue("text is not valid UTF-8")
        }
        self.init(text: text, finishReason: reason, promptTokens: u32(2), completionTokens: u32(6))
    }
}
