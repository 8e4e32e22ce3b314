import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import OutpostCore
import Synchronization

// Who may invalidate a fleet's caches (DESIGN.md, "MQTT", "Authenticated invalidations"):
// every gateway signs what it publishes on the invalidate and watermark topics with its own
// Ed25519 key (`member.key` in its state directory, made at first start). A receiver admits a
// member's key when the signed fleet config lists it under `members`, or when the message carries
// a certificate signed by a trusted fleet key (`outpost member certify`). Operators sign with the
// fleet key itself (`outpost cache invalidate --fleet-key`). Nothing unsigned, unknown or
// mis-signed changes any state.

/// A message's signature as it travels, in the `auth` object of an invalidation or watermark:
/// - a member: `{"key":"<base64 public key>","sig":"<base64>","cert":{"key_id":"ops","sig":"<base64>"}}`
///   (`cert` optional: a fleet key's signature over the fleet, the origin and `key`);
/// - an operator: `{"key_id":"ops","sig":"<base64>"}` (signed by that fleet key).
public enum MessageSignature: Sendable, Hashable {
    case member(key: [UInt8], signature: [UInt8], certificate: CertificateSignature?)
    case fleet(keyID: String, signature: [UInt8])

    /// A fleet key's signature of a member key (`MemberCertificate`), as carried in messages.
    public struct CertificateSignature: Sendable, Hashable {
        public let keyID: String
        public let signature: [UInt8]

        public init(keyID: String, signature: [UInt8]) {
            self.keyID = keyID
            self.signature = signature
        }
    }

    public var json: JSONValue {
        func b64(_ b: [UInt8]) -> JSONValue { .string(Data(b).base64EncodedString()) }
        switch self {
        case .member(let key, let signature, let certificate):
            var o: [String: JSONValue] = ["key": b64(key), "sig": b64(signature)]
            if let certificate {
                o["cert"] = .object(["key_id": .string(certificate.keyID), "sig": b64(certificate.signature)])
            }
            return .object(o)
        case .fleet(let keyID, let signature):
            return .object(["key_id": .string(keyID), "sig": b64(signature)])
        }
    }

    /// Parses an `auth` object (shape only: the signature is checked by `Membership`).
    public init(json value: JSONValue) throws(QueryError) {
        func bytes(_ v: JSONValue?, _ count: Int, _ field: String) throws(QueryError) -> [UInt8] {
            guard case .string(let s)? = v, s.utf8.count <= 128, let d = Data(base64Encoded: s), d.count == count else {
                throw .invalidParameter(field, "must be base64 of \(count) bytes")
            }
            return Array(d)
        }
        func keyID(_ v: JSONValue?, _ field: String) throws(QueryError) -> String {
            guard case .string(let s)? = v, !s.isEmpty, s.utf8.count <= 128 else {
                throw .invalidParameter(field, "must be a key id (1 to 128 bytes)")
            }
            return s
        }
        guard case .object(let o) = value else { throw .invalidParameter("auth", "must be an object") }
        let signature = try bytes(o["sig"], Ed25519.signatureByteCount, "auth.sig")
        switch (o["key"], o["key_id"]) {
        case (let key?, nil):
            var certificate: CertificateSignature?
            if let c = o["cert"] {
                guard case .object(let co) = c else { throw .invalidParameter("auth.cert", "must be an object") }
                certificate = CertificateSignature(keyID: try keyID(co["key_id"], "auth.cert.key_id"),
                                                   signature: try bytes(co["sig"], Ed25519.signatureByteCount, "auth.cert.sig"))
            }
            self = .member(key: try bytes(key, Ed25519.keyByteCount, "auth.key"), signature: signature, certificate: certificate)
        case (nil, let id?):
            self = .fleet(keyID: try keyID(id, "auth.key_id"), signature: signature)
        default:
            throw .invalidParameter("auth", "must hold either key (a member) or key_id (a fleet key)")
        }
    }
}

/// Length-prefixed, big-endian fields after a domain string: the bytes a signature covers, built
/// from parsed values (never from the JSON text, which may be re-encoded on the way).
public struct SignedBytes {
    public private(set) var bytes: [UInt8]

    public init(domain: String) {
        bytes = Array(domain.utf8)
        bytes.append(0)
    }

    public mutating func string(_ s: String) {
        u32(UInt32(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }

    public mutating func raw(_ b: [UInt8]) {
        u32(UInt32(b.count))
        bytes.append(contentsOf: b)
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }
}

/// An invalidation or watermark: what its signature covers is `"<domain>" 0x00 | fleet | origin |`
/// the message's own fields (strings u32-length-prefixed, integers big-endian), built from the
/// parsed values. The fleet is in it, so a message signed for one fleet is refused by another.
public protocol SignedPeerMessage {
    static var domain: String { get }
    var origin: String { get }
    var signature: MessageSignature? { get set }
    func appendSignedFields(to m: inout SignedBytes)
}

extension SignedPeerMessage {
    /// The bytes a signature covers.
    public func signedMessage(fleet: String) -> [UInt8] {
        var m = SignedBytes(domain: Self.domain)
        m.string(fleet)
        m.string(origin)
        appendSignedFields(to: &m)
        return m.bytes
    }

    /// This message signed by a gateway's member key.
    public func signed(by identity: MemberIdentity, fleet: String) -> Self {
        var copy = self
        copy.signature = identity.sign(signedMessage(fleet: fleet))
        return copy
    }
}

/// A fleet key's word that `publicKey` is gateway `gateway`'s key in fleet `fleet`
/// (`outpost member certify`). As a file (`member.cert` in the gateway's state directory):
///
/// ```
/// outpost-member-certificate v1
/// fleet: f1
/// gateway: gw-1
/// ed25519: <base64 of the member's public key>
/// key_id: ops-2026
/// signature: <base64 of the fleet key's signature>
/// ```
public struct MemberCertificate: Sendable, Equatable {
    public static let header = "outpost-member-certificate v1"
    public static let domain = "outpost-member-v1"
    public let fleet: String
    public let gateway: String
    public let publicKey: Ed25519.PublicKey
    public let keyID: String
    public let signature: [UInt8]

    /// The bytes a fleet key signs: `"outpost-member-v1" 0x00 | fleet | gateway | key` (each u32-length-prefixed).
    public static func signedMessage(fleet: String, gateway: String, key: [UInt8]) -> [UInt8] {
        var m = SignedBytes(domain: domain)
        m.string(fleet)
        m.string(gateway)
        m.raw(key)
        return m.bytes
    }

    public init(fleet: String, gateway: String, publicKey: Ed25519.PublicKey, keyID: String, signature: [UInt8]) {
        self.fleet = fleet
        self.gateway = gateway
        self.publicKey = publicKey
        self.keyID = keyID
        self.signature = signature
    }

    /// Certifies `publicKey` as `gateway`'s in `fleet` with the fleet key `signer` (id `keyID`).
    public static func issue(fleet: String, gateway: String, publicKey: Ed25519.PublicKey, keyID: String,
                             signer: Ed25519.PrivateKey) throws(Ed25519.KeyError) -> MemberCertificate {
        let message = signedMessage(fleet: fleet, gateway: gateway, key: publicKey.rawRepresentation)
        return MemberCertificate(fleet: fleet, gateway: gateway, publicKey: publicKey, keyID: keyID,
                                 signature: try signer.signature(for: message))
    }

    public var fileText: String {
        """
        \(Self.header)
        fleet: \(fleet)
        gateway: \(gateway)
        ed25519: \(Data(publicKey.rawRepresentation).base64EncodedString())
        key_id: \(keyID)
        signature: \(Data(signature).base64EncodedString())

        """
    }

    /// Reads a certificate's text (`fileText`); the error says what is wrong with it.
    public init(text: String) throws(MemberCertificate.ParseError) {
        func fail(_ what: String) -> ParseError { ParseError(description: what) }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
        guard lines.first == Self.header else { throw fail("the first line must be \"\(Self.header)\"") }
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw fail("unexpected line \"\(line.prefix(40))\"") }
            let name = String(line[..<colon])
            guard ["fleet", "gateway", "ed25519", "key_id", "signature"].contains(name), fields[name] == nil else {
                throw fail("unexpected line \"\(line.prefix(40))\"")
            }
            fields[name] = line[line.index(after: colon)...].trimmingWhitespace()
        }
        guard let fleet = fields["fleet"], !fleet.isEmpty, let gateway = fields["gateway"], !gateway.isEmpty,
              let keyID = fields["key_id"], !keyID.isEmpty
        else { throw fail("fleet, gateway and key_id lines are required") }
        guard let k = fields["ed25519"].flatMap({ Data(base64Encoded: $0) }), let key = try? Ed25519.PublicKey(rawRepresentation: k) else {
            throw fail("the ed25519 line must hold a 32-byte public key in base64")
        }
        guard let s = fields["signature"].flatMap({ Data(base64Encoded: $0) }), s.count == Ed25519.signatureByteCount else {
            throw fail("the signature line must hold 64 bytes in base64")
        }
        self.init(fleet: fleet, gateway: gateway, publicKey: key, keyID: keyID, signature: Array(s))
    }

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }
}

/// A gateway's own signing identity: its member key and, if the operator certified it, the
/// fleet key's certificate, which it attaches to what it signs. The agent keeps both in its state
/// directory (`MemberIdentity.loadOrCreate`, in `Agent`).
public struct MemberIdentity: Sendable {
    /// The key file's first line (`STATE/member.key`, written by the agent).
    public static let keyHeader = "outpost-member-private-key v1"
    public let gateway: String
    public let privateKey: Ed25519.PrivateKey
    public let certificate: MemberCertificate?

    public init(gateway: String, privateKey: Ed25519.PrivateKey, certificate: MemberCertificate? = nil) {
        self.gateway = gateway
        self.privateKey = privateKey
        self.certificate = certificate
    }

    public var publicKey: Ed25519.PublicKey { privateKey.publicKey }

    /// `message`'s signature, with the key and certificate that let a peer check it.
    func sign(_ message: [UInt8]) -> MessageSignature? {
        guard let signature = try? privateKey.signature(for: message) else { return nil }
        return .member(key: publicKey.rawRepresentation, signature: signature,
                       certificate: certificate.map { .init(keyID: $0.keyID, signature: $0.signature) })
    }
}

/// The keys a gateway accepts invalidations and watermarks from: the trusted fleet keys (for
/// operators, and for certificates of member keys) and the member keys the signed fleet config
/// lists. The member list changes with each applied config (`setMembers`).
public final class Membership: Sendable {
    /// Why a message was refused (counted as `invalidations_refused_<raw value>`).
    public enum Refusal: String, Sendable, CaseIterable, Error {
        /// No `auth` object.
        case unsigned
        /// A member key that neither the config lists nor a certificate vouches for.
        case unknownMember = "unknown_member"
        /// A fleet key id (an operator's message or a certificate) that is not trusted.
        case unknownKey = "unknown_key"
        /// The config lists the origin with another key.
        case keyMismatch = "key_mismatch"
        case badCertificate = "bad_certificate"
        case badSignature = "bad_signature"
        /// An operator's message (fleet key) on a topic only gateways publish to, or with a sequence.
        case notAllowed = "not_allowed"
    }

    /// Who signed an admitted message.
    public enum Signer: Sendable, Equatable {
        case member
        case fleet(keyID: String)
    }

    public let fleetKeys: [String: Ed25519.PublicKey]
    private let state: Mutex<State>

    struct State: Sendable {
        var members: [String: Ed25519.PublicKey]
        /// Digests of certificates already checked (bounded; cleared when full).
        var certified: Set<[UInt8]> = []
    }

    public init(fleetKeys: [String: Ed25519.PublicKey], members: [String: Ed25519.PublicKey] = [:]) {
        self.fleetKeys = fleetKeys
        state = Mutex(State(members: members))
    }

    /// Replaces the listed members (gateway id → public key), e.g. after a fleet config is applied.
    public func setMembers(_ members: [String: Ed25519.PublicKey]) {
        state.withLock { $0.members = members }
    }

    public var members: [String: Ed25519.PublicKey] { state.withLock { $0.members } }

    /// Whether `signature` admits `message` as `origin`'s, in `fleet`.
    public func authenticate(origin: String, fleet: String, signature: MessageSignature?,
                             message: [UInt8]) -> Result<Signer, Refusal> {
        guard let signature else { return .failure(.unsigned) }
        switch signature {
        case .fleet(let keyID, let sig):
            guard let key = fleetKeys[keyID] else { return .failure(.unknownKey) }
            return key.isValidSignature(sig, for: message) ? .success(.fleet(keyID: keyID)) : .failure(.badSignature)
        case .member(let raw, let sig, let certificate):
            guard let key = try? Ed25519.PublicKey(rawRepresentation: raw) else { return .failure(.badSignature) }
            let listed = state.withLock { $0.members[origin] }
            if let listed {
                guard listed == key else { return .failure(.keyMismatch) }
            } else {
                guard let certificate else { return .failure(.unknownMember) }
                guard let fleetKey = fleetKeys[certificate.keyID] else { return .failure(.unknownKey) }
                let certMessage = MemberCertificate.signedMessage(fleet: fleet, gateway: origin, key: raw)
                let digest = SHA256.hash(certMessage + certificate.signature + Array(certificate.keyID.utf8))
                if !state.withLock({ $0.certified.contains(digest) }) {
                    guard fleetKey.isValidSignature(certificate.signature, for: certMessage) else {
                        return .failure(.badCertificate)
                    }
                    state.withLock { s in
                        if s.certified.count >= 4096 { s.certified.removeAll() }
                        s.certified.insert(digest)
                    }
                }
            }
            return key.isValidSignature(sig, for: message) ? .success(.member) : .failure(.badSignature)
        }
    }
}
