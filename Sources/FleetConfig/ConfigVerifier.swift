import FoundationEssentials
import OutpostCore

/// A config that passed every check: signature, target, expiry, version, payload schema.
public struct VerifiedConfig: Sendable, Equatable {
    public let envelope: ConfigEnvelope
    public let settings: FleetSettings
    /// `.fleet` or `.gateway`, from the envelope's target.
    public let source: ConfigSource

    public var version: UInt64 { envelope.version }
}

/// Where a config comes from; each source has its own version sequence.
public enum ConfigSource: String, Sendable, Equatable, Codable {
    /// `outpost/<fleet>/config`: the whole fleet.
    case fleet
    /// `outpost/<fleet>/gw/<id>/config`: this gateway; its fields win over the fleet's.
    case gateway
}

/// The last version applied from each source (persisted in `config/applied-version`).
public struct AppliedVersions: Sendable, Equatable, Codable {
    public var fleet: UInt64
    public var gateway: UInt64

    public init(fleet: UInt64 = 0, gateway: UInt64 = 0) {
        self.fleet = fleet
        self.gateway = gateway
    }

    public subscript(source: ConfigSource) -> UInt64 {
        get { source == .fleet ? fleet : gateway }
        set { if source == .fleet { fleet = newValue } else { gateway = newValue } }
    }
}

/// Checks envelopes against the trusted keys, this gateway's id and the applied versions.
public struct ConfigVerifier: Sendable {
    /// Envelopes above this size are refused before parsing.
    public static let defaultMaxEnvelopeBytes = 256 * 1024
    /// A decompressed payload may not exceed this size either.
    public static let maxPayloadBytes = 1 << 20

    public var trustedKeys: [TrustedKey]
    public var gatewayID: String?
    public var maxEnvelopeBytes: Int
    /// Decompresses a zstd payload (`frame`, `limit`); nil when this build cannot, and zstd
    /// envelopes are then refused as unsupported.
    public var zstdDecompress: (@Sendable ([UInt8], Int) throws -> [UInt8])?

    public init(trustedKeys: [TrustedKey], gatewayID: String?, maxEnvelopeBytes: Int = defaultMaxEnvelopeBytes,
                zstdDecompress: (@Sendable ([UInt8], Int) throws -> [UInt8])? = nil) {
        self.trustedKeys = trustedKeys
        self.gatewayID = gatewayID
        self.maxEnvelopeBytes = maxEnvelopeBytes
        self.zstdDecompress = zstdDecompress
    }

    /// Verifies `data` in this order: size, envelope shape, key, signature over the exact bytes,
    /// target, expiry, version, payload decoding and schema. The first failure is thrown.
    /// `now` is Unix seconds.
    /// With `expecting`, the envelope must target that source (a gateway config published on the
    /// fleet topic, or the reverse, is refused as `wrong_target`).
    public func verify(_ data: Data, applied: AppliedVersions, now: Int64,
                       expecting: ConfigSource? = nil) throws(FleetConfigError) -> VerifiedConfig {
        guard data.count <= maxEnvelopeBytes else { throw .oversized(data.count, limit: maxEnvelopeBytes) }
        let envelope = try ConfigEnvelope.parse(data)
        guard let key = trustedKeys.first(where: { $0.keyID == envelope.keyID }) else { throw .untrustedKey(envelope.keyID) }
        guard key.publicKey.isValidSignature(envelope.signature, for: envelope.signedMessage) else {
            throw .badSignature(keyID: key.keyID)
        }
        guard let source = source(of: envelope) else {
            throw .wrongTarget(envelope.target, expected: gatewayID ?? "no gateway id set")
        }
        if let expecting, expecting != source {
            throw .targetMismatch(envelope.target, source: expecting.rawValue)
        }
        if let expiresAt = envelope.expiresAt, expiresAt <= now { throw .expired(at: expiresAt, now: now) }
        let current = applied[source]
        if envelope.version == current { throw .replay(version: envelope.version) }
        if envelope.version < current { throw .downgrade(version: envelope.version, applied: current) }
        let json: [UInt8]
        switch envelope.encoding {
        case "json":
            json = envelope.payload
        case "zstd":
            guard let zstdDecompress else { throw .unsupportedEncoding("zstd") }
            do { json = try zstdDecompress(envelope.payload, Self.maxPayloadBytes) } catch {
                throw .invalidPayload("the zstd frame does not decompress: \(error)")
            }
        default:
            throw .unsupportedEncoding(envelope.encoding)
        }
        return VerifiedConfig(envelope: envelope, settings: try FleetSettings(payload: json), source: source)
    }

    /// `.fleet` for target `"fleet"`, `.gateway` for this gateway's id, nil for anything else.
    public func source(of envelope: ConfigEnvelope) -> ConfigSource? {
        if envelope.target == "fleet" { return .fleet }
        if let gatewayID, envelope.target == gatewayID { return .gateway }
        return nil
    }
}
