/// Why a fleet configuration was refused, or why applying or storing one failed. The message says
/// what was wrong and what to do; `reason` is a short stable word for status reports and tests.
public struct FleetConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    private enum Code: String, Sendable {
        case oversized, malformed, unknownKey, badSignature, untrustedKey, replay, downgrade, expired
        case wrongTarget, unsupportedEncoding, invalidPayload, keyFile, storage, healthCheck
    }

    private let code: Code
    public let message: String

    private init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// A short, stable name for the failure: `oversized`, `malformed`, `unknown_key`, `bad_signature`,
    /// `untrusted_key`, `replay`, `downgrade`, `expired`, `wrong_target`, `unsupported_encoding`,
    /// `invalid_payload`, `key_file`, `storage`, `health_check`.
    public var reason: String {
        switch code {
        case .unknownKey: "unknown_key"
        case .badSignature: "bad_signature"
        case .untrustedKey: "untrusted_key"
        case .wrongTarget: "wrong_target"
        case .unsupportedEncoding: "unsupported_encoding"
        case .invalidPayload: "invalid_payload"
        case .keyFile: "key_file"
        case .healthCheck: "health_check"
        default: code.rawValue
        }
    }

    public var description: String { message }

    public static func oversized(_ size: Int, limit: Int) -> Self {
        .init(.oversized, "the config envelope is \(size) bytes, over the limit of \(limit) bytes")
    }
    public static func malformed(_ what: String) -> Self {
        .init(.malformed, "the config envelope is malformed: \(what)")
    }
    public static func unknownKey(_ key: String) -> Self {
        .init(.unknownKey, "unknown config key \"\(key)\"; remove it or check its spelling")
    }
    public static func badSignature(keyID: String) -> Self {
        .init(.badSignature, "the signature does not verify with trusted key \"\(keyID)\": the config was altered or signed with another key")
    }
    public static func untrustedKey(_ keyID: String) -> Self {
        .init(.untrustedKey, "the config is signed with key \"\(keyID)\", which is not trusted here; add its public key with --trust-key")
    }
    public static func replay(version: UInt64) -> Self {
        .init(.replay, "config version \(version) was already applied here; publish a newer version")
    }
    public static func downgrade(version: UInt64, applied: UInt64) -> Self {
        .init(.downgrade, "config version \(version) is older than the applied version \(applied); publish a newer version")
    }
    public static func expired(at: Int64, now: Int64) -> Self {
        .init(.expired, "the config expired at \(at) (now \(now)); sign it again with a later expiry")
    }
    public static func wrongTarget(_ target: String, expected: String) -> Self {
        .init(.wrongTarget, "the config targets \"\(target)\", not \"fleet\" or this gateway (\"\(expected)\")")
    }
    public static func targetMismatch(_ target: String, source: String) -> Self {
        .init(.wrongTarget, "the config targets \"\(target)\" but came from the \(source) config topic; publish fleet configs "
            + "(target \"fleet\") on <root>/config and a gateway's (target its id) on <root>/gw/<id>/config")
    }
    public static func unsupportedEncoding(_ encoding: String) -> Self {
        .init(.unsupportedEncoding, "payload encoding \"\(encoding)\" is not supported by this build; sign with encoding \"json\"")
    }
    public static func invalidPayload(_ what: String) -> Self {
        .init(.invalidPayload, "the config payload is invalid: \(what)")
    }
    public static func keyFile(_ path: String, _ what: String) -> Self {
        .init(.keyFile, "key file \(path): \(what)")
    }
    public static func storage(_ path: String, _ what: String, errno: Int32? = nil) -> Self {
        let suffix = errno.map { " (errno \($0))" } ?? ""
        return .init(.storage, "config store \(path): \(what)\(suffix)")
    }
    public static func healthCheck(_ what: String) -> Self {
        .init(.healthCheck, "the health check failed after switching: \(what)")
    }
}
