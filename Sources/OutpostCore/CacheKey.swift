
/// The cache key of a request: SHA-256 over a canonical, length-prefixed encoding of the model
/// fingerprint, the chat template, the normalised messages, the sampling parameters that change
/// the output, and the namespace. The same request gives the same key on every gateway that runs
/// the same model file. Printed and parsed as 64 lower-case hex digits.
public struct CacheKey: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The digest as four big-endian words (cheap to hash and compare).
    public let w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    /// Version of the canonical encoding; changing the encoding changes this string.
    public static let encodingVersion = "outpost.cache-key.v1"

    public init(bytes: some Collection<UInt8>) throws(QueryError) {
        guard bytes.count == 32 else { throw .invalidCacheKey(String(repeating: "?", count: bytes.count * 2)) }
        var words = [UInt64](repeating: 0, count: 4)
        for (index, byte) in bytes.enumerated() {
            words[index / 8] = words[index / 8] << 8 | UInt64(byte)
        }
        (w0, w1, w2, w3) = (words[0], words[1], words[2], words[3])
    }

    public init(hex: String) throws(QueryError) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 64 else { throw .invalidCacheKey(hex) }
        var bytes = [UInt8]()
        bytes.reserveCapacity(32)
        var index = 0
        while index < 64 {
            guard let hi = Self.nibble(utf8[index]), let lo = Self.nibble(utf8[index + 1]) else {
                throw .invalidCacheKey(hex)
            }
            bytes.append(hi << 4 | lo)
            index += 2
        }
        try self.init(bytes: bytes)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        default: return nil
        }
    }

    /// The 32 digest bytes.
    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(32)
        for word in [w0, w1, w2, w3] {
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return out
    }

    public var hex: String {
        hexString(bytes)
    }

    public var description: String { hex }

    public static func < (lhs: CacheKey, rhs: CacheKey) -> Bool {
        (lhs.w0, lhs.w1, lhs.w2, lhs.w3) < (rhs.w0, rhs.w1, rhs.w2, rhs.w3)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(hex: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }

    /// The key of `query` for the model with `modelFingerprint` (e.g. the SHA-256 of the GGUF
    /// file) and `chatTemplate` (the template the engine renders the messages with).
    public static func derive(modelFingerprint: String, chatTemplate: String, query: Query) -> CacheKey {
        derive(modelFingerprint: modelFingerprint, chatTemplate: chatTemplate, messages: query.messages,
               sampling: query.sampling, namespace: query.namespace)
    }

    public static func derive(
        modelFingerprint: String,
        chatTemplate: String,
        messages: [ChatMessage],
        sampling: SamplingParameters,
        namespace: String
    ) -> CacheKey {
        let encoded = canonicalEncoding(modelFingerprint: modelFingerprint, chatTemplate: chatTemplate,
                                        messages: messages, sampling: sampling, namespace: namespace)
        // A SHA-256 digest is always 32 bytes.
        return try! CacheKey(bytes: SHA256.hash(encoded))
    }

    /// The exact bytes hashed: every field is a one-byte tag, a big-endian 64-bit length and the
    /// value, so no two different requests encode to the same bytes.
    static func canonicalEncoding(
        modelFingerprint: String,
        chatTemplate: String,
        messages: [ChatMessage],
        sampling: SamplingParameters,
        namespace: String
    ) -> [UInt8] {
        var out = CanonicalWriter()
        out.string(0x00, encodingVersion)
        out.string(0x01, modelFingerprint)
        out.string(0x02, chatTemplate)
        out.integer(0x03, UInt64(messages.count))
        for message in messages {
            out.string(0x04, message.role)
            out.string(0x05, message.content)
        }
        if sampling.isGreedy {
            out.string(0x10, "greedy")
        } else {
            out.string(0x10, "sample")
            out.double(0x11, sampling.temperature)
            out.integer(0x12, UInt64(bitPattern: Int64(sampling.topK)))
            out.double(0x13, sampling.topP)
            if let seed = sampling.seed { out.integer(0x14, seed) } else { out.string(0x14, "unseeded") }
        }
        out.integer(0x15, UInt64(bitPattern: Int64(sampling.maxTokens)))
        out.double(0x16, sampling.repeatPenalty)
        out.string(0x20, namespace)
        return out.bytes
    }
}

struct CanonicalWriter {
    var bytes: [UInt8] = []

    mutating func raw(_ tag: UInt8, _ value: some Collection<UInt8>) {
        bytes.append(tag)
        let length = UInt64(value.count)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: length >> UInt64(shift))) }
        bytes.append(contentsOf: value)
    }

    mutating func string(_ tag: UInt8, _ value: String) { raw(tag, Array(value.utf8)) }

    mutating func integer(_ tag: UInt8, _ value: UInt64) {
        var be = [UInt8]()
        for shift in stride(from: 56, through: 0, by: -8) { be.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
        raw(tag, be)
    }

    /// Doubles by bit pattern, with -0 folded into +0.
    mutating func double(_ tag: UInt8, _ value: Double) {
        integer(tag, (value == 0 ? 0.0 : value).bitPattern)
    }
}
