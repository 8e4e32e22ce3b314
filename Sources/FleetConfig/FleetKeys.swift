import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import OutpostCore

/// A public key the gateway trusts for fleet configs. Key files are text:
///
/// ```
/// outpost-fleet-public-key v1
/// key_id: ops-2026
/// ed25519: <base64 of the 32-byte raw public key>
/// ```
///
/// Private keys (`fleet.key`, mode 0600) have the same shape with `outpost-fleet-private-key v1` and
/// the 32-byte raw private key. Several trusted keys may be given at once, for rotation.
public struct TrustedKey: Sendable {
    public static let header = "outpost-fleet-public-key v1"
    public let keyID: String
    public let publicKey: Ed25519.PublicKey

    public init(keyID: String, publicKey: Ed25519.PublicKey) {
        self.keyID = keyID
        self.publicKey = publicKey
    }

    public static func load(path: String) throws(FleetConfigError) -> TrustedKey {
        let (keyID, raw) = try KeyFile.load(path: path, header: header)
        do { return TrustedKey(keyID: keyID, publicKey: try .init(rawRepresentation: raw)) } catch {
            throw .keyFile(path, "not an Ed25519 public key")
        }
    }

    public var fileText: String { KeyFile.text(header: Self.header, keyID: keyID, raw: publicKey.rawRepresentation) }
}

/// The private key that signs fleet configs (`outpost config sign`).
public struct SigningKey: Sendable {
    public static let header = "outpost-fleet-private-key v1"
    public let keyID: String
    public let privateKey: Ed25519.PrivateKey

    public init(keyID: String, privateKey: Ed25519.PrivateKey) {
        self.keyID = keyID
        self.privateKey = privateKey
    }

    /// A new key; its id is given or derived from the public key (first 8 bytes of its SHA-256, hex).
    public static func generate(keyID: String? = nil) -> SigningKey {
        let key = Ed25519.PrivateKey()
        let derived = hexString(SHA256.hash(key.publicKey.rawRepresentation).prefix(8))
        return SigningKey(keyID: keyID ?? derived, privateKey: key)
    }

    public static func load(path: String) throws(FleetConfigError) -> SigningKey {
        let (keyID, raw) = try KeyFile.load(path: path, header: header)
        do { return SigningKey(keyID: keyID, privateKey: try .init(rawRepresentation: raw)) } catch {
            throw .keyFile(path, "not an Ed25519 private key")
        }
    }

    public var trustedKey: TrustedKey { TrustedKey(keyID: keyID, publicKey: privateKey.publicKey) }
    public var fileText: String { KeyFile.text(header: Self.header, keyID: keyID, raw: privateKey.rawRepresentation) }

    /// Signs `payload` (carried byte for byte) into an envelope.
    public func sign(payload: [UInt8], version: UInt64, target: String = "fleet", encoding: String = "json",
                     issuedAt: Int64, expiresAt: Int64? = nil) throws(FleetConfigError) -> ConfigEnvelope {
        var envelope = ConfigEnvelope(version: version, issuedAt: issuedAt, expiresAt: expiresAt, target: target,
                                      encoding: encoding, payload: payload, signature: [], keyID: keyID)
        do { envelope.signature = try privateKey.signature(for: envelope.signedMessage) } catch {
            throw .keyFile(keyID, "signing failed: \(error)")
        }
        return envelope
    }
}

extension KeyFile {
    /// `read(path:header:)` with the error as a `FleetConfigError`.
    static func load(path: String, header: String) throws(FleetConfigError) -> (keyID: String, raw: Data) {
        do throws(KeyFile.Error) { return try KeyFile.read(path: path, header: header) } catch {
            throw .keyFile(error.path, error.what)
        }
    }
}
