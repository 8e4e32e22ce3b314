import FoundationEssentials
import OutpostCore

/// A signed fleet configuration as it travels (retained MQTT message, file):
///
/// ```json
/// {"version":7,"issued_at":1764000000,"expires_at":1764086400,"target":"fleet","encoding":"json",
///  "payload":"<base64 of the exact bytes signed>","signature":"ed25519:<base64>","key_id":"ops-2026"}
/// ```
///
/// The signature covers `signedMessage`: a domain-separated, length-prefixed byte string of the
/// version, target, issue and expiry times, encoding and the payload bytes exactly as carried.
/// Nothing is re-serialised before verifying.
public struct ConfigEnvelope: Sendable, Equatable {
    public static let domain = "outpost-config-v1"
    public static let fields: Set<String> = ["version", "issued_at", "expires_at", "target", "encoding", "payload",
                                             "signature", "key_id"]

    public var version: UInt64
    public var issuedAt: Int64
    public var expiresAt: Int64?
    /// `"fleet"` or one gateway's id.
    public var target: String
    /// `"json"` or `"zstd"` (a zstd frame holding the JSON).
    public var encoding: String
    public var payload: [UInt8]
    public var signature: [UInt8]
    public var keyID: String

    public init(version: UInt64, issuedAt: Int64, expiresAt: Int64?, target: String, encoding: String,
                payload: [UInt8], signature: [UInt8], keyID: String) {
        self.version = version
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.target = target
        self.encoding = encoding
        self.payload = payload
        self.signature = signature
        self.keyID = keyID
    }

    /// The bytes the signature covers:
    /// `"outpost-config-v1" 0x00 | u64 version | u32 len, target | i64 issued_at | u8 has_expiry, i64 expires_at |
    /// u32 len, encoding | u64 len, payload` (big-endian integers).
    public var signedMessage: [UInt8] {
        var m = Array(Self.domain.utf8)
        m.append(0)
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.bigEndian) { m.append(contentsOf: $0) } }
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { m.append(contentsOf: $0) } }
        u64(version)
        u32(UInt32(target.utf8.count)); m.append(contentsOf: target.utf8)
        u64(UInt64(bitPattern: issuedAt))
        m.append(expiresAt == nil ? 0 : 1); u64(UInt64(bitPattern: expiresAt ?? 0))
        u32(UInt32(encoding.utf8.count)); m.append(contentsOf: encoding.utf8)
        u64(UInt64(payload.count)); m.append(contentsOf: payload)
        return m
    }

    /// Parses the envelope strictly: every field of the right type, no unknown fields.
    public static func parse(_ data: Data) throws(FleetConfigError) -> ConfigEnvelope {
        let value: JSONValue
        do { value = try JSONValue.parse(data) } catch { throw .malformed(error.message) }
        guard case .object(let o) = value else { throw .malformed("not a JSON object") }
        for key in o.keys.sorted() where !fields.contains(key) { throw .unknownKey(key) }

        func integer(_ key: String) throws(FleetConfigError) -> Int64? {
            guard let v = o[key] else { return nil }
            guard case .number(let d) = v, d == d.rounded(), abs(d) <= 9_007_199_254_740_992 else {
                throw .malformed("\"\(key)\" must be an integer")
            }
            return Int64(d)
        }
        func string(_ key: String) throws(FleetConfigError) -> String {
            guard let v = o[key] else { throw .malformed("\"\(key)\" is missing") }
            guard case .string(let s) = v, !s.isEmpty else { throw .malformed("\"\(key)\" must be a non-empty string") }
            return s
        }
        guard let version = try integer("version") else { throw .malformed("\"version\" is missing") }
        guard version >= 1 else { throw .malformed("\"version\" must be 1 or more") }
        guard let issuedAt = try integer("issued_at") else { throw .malformed("\"issued_at\" is missing") }
        let expiresAt = try integer("expires_at")
        let target = try string("target")
        let encoding = try string("encoding")
        guard let payload = Data(base64Encoded: try string("payload")) else { throw .malformed("\"payload\" is not base64") }
        let sig = try string("signature")
        guard sig.hasPrefix("ed25519:"), let signature = Data(base64Encoded: String(sig.dropFirst(8))), signature.count == 64 else {
            throw .malformed("\"signature\" must be \"ed25519:\" and 64 bytes in base64")
        }
        let keyID = try string("key_id")
        return ConfigEnvelope(version: UInt64(version), issuedAt: issuedAt, expiresAt: expiresAt, target: target,
                              encoding: encoding, payload: Array(payload), signature: Array(signature), keyID: keyID)
    }

    /// The envelope as JSON (keys sorted, one line).
    public func encoded() -> Data {
        var o: [String: JSONValue] = [
            "version": .number(Double(Int64(clamping: version))), "issued_at": .number(Double(issuedAt)),
            "target": .string(target), "encoding": .string(encoding),
            "payload": .string(Data(payload).base64EncodedString()),
            "signature": .string("ed25519:" + Data(signature).base64EncodedString()), "key_id": .string(keyID),
        ]
        if let expiresAt { o["expires_at"] = .number(Double(expiresAt)) }
        return Data(JSONValue.object(o).encoded())
    }
}
