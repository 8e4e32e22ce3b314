import FleetConfig
import FoundationEssentials
import OutpostCore
import PeerSync

extension MemberIdentity {
    public static let keyFileName = "member.key"
    public static let certificateFileName = "member.cert"

    /// `STATE/member.key`, made (mode 0600) if there is none; `STATE/member.cert` if present, which
    /// must certify this key for `gateway` (and `fleet`, when given).
    public static func loadOrCreate(stateDirectory: String, gateway: String, fleet: String? = nil) throws(KeyFile.Error) -> MemberIdentity {
        let keyPath = Paths.join(stateDirectory, keyFileName)
        let key: Ed25519.PrivateKey
        if FileManager.default.fileExists(atPath: keyPath) {
            let (_, raw) = try KeyFile.read(path: keyPath, header: keyHeader)
            do { key = try Ed25519.PrivateKey(rawRepresentation: raw) } catch {
                throw KeyFile.Error(path: keyPath, what: "not an Ed25519 private key")
            }
        } else {
            key = Ed25519.PrivateKey()
            try KeyFile.write(KeyFile.text(header: keyHeader, keyID: gateway, raw: key.rawRepresentation), to: keyPath, mode: 0o600)
        }
        let certPath = Paths.join(stateDirectory, certificateFileName)
        guard FileManager.default.fileExists(atPath: certPath) else { return MemberIdentity(gateway: gateway, privateKey: key) }
        guard let data = FileManager.default.contents(atPath: certPath), data.count < 4096,
              let text = String(data: data, encoding: .utf8)
        else { throw KeyFile.Error(path: certPath, what: "cannot be read as a certificate") }
        let c: MemberCertificate
        do { c = try MemberCertificate(text: text) } catch { throw KeyFile.Error(path: certPath, what: error.description) }
        guard c.publicKey == key.publicKey else {
            throw KeyFile.Error(path: certPath, what: "certifies another key than \(keyPath)")
        }
        guard c.gateway == gateway else {
            throw KeyFile.Error(path: certPath, what: "certifies gateway \"\(c.gateway)\", not \"\(gateway)\"")
        }
        if let fleet, c.fleet != fleet {
            throw KeyFile.Error(path: certPath, what: "certifies fleet \"\(c.fleet)\", not \"\(fleet)\"")
        }
        return MemberIdentity(gateway: gateway, privateKey: key, certificate: c)
    }
}
