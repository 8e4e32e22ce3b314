import Agent
import ArgumentParser
import FleetConfig
import FoundationEssentials
import OutpostCore
import PeerSync

/// `outpost member …`: the gateway's member key, which signs the invalidations it sends its
/// peers, and the fleet key's certificate of it.
struct Member: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "member",
        abstract: "This gateway's member key (signs its invalidations) and its certification by a fleet key.",
        subcommands: [Key.self, Certify.self]
    )
}

extension Member {
    struct Key: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print this gateway's member public key (made in the state directory if there is none).",
            discussion: """
                Admit it in one of two ways: list it in the signed fleet config ("members": {"<id>": "<key>"}), or \\
                certify it with the fleet key (outpost member certify) and put the certificate at STATE/member.cert.
                """)

        @OptionGroup var location: AgentLocationOptions
        @Option(name: .long, help: "Gateway id; default the agent's (the host name).") var id: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            var overrides = location.overrides()
            overrides.gatewayID = id
            let c: AgentConfiguration
            do { c = try AgentConfiguration.resolve(overrides, environment: ProcessInfo.processInfo.environment) } catch {
                throw CLIError("\(error)")
            }
            try FileManager.default.createDirectory(atPath: c.stateDirectory, withIntermediateDirectories: true)
            let identity: MemberIdentity
            do { identity = try MemberIdentity.loadOrCreate(stateDirectory: c.stateDirectory, gateway: c.gatewayID) } catch {
                throw CLIError("\(error)")
            }
            let key = Data(identity.publicKey.rawRepresentation).base64EncodedString()
            if json {
                var o: [String: JSONValue] = ["gateway": .string(c.gatewayID), "key": .string(key),
                                              "certified": .bool(identity.certificate != nil)]
                if let cert = identity.certificate { o["fleet"] = .string(cert.fleet); o["key_id"] = .string(cert.keyID) }
                StandardStreams.out(Data(JSONValue.object(o).encoded()) + Data("\n".utf8))
            } else {
                print("\(c.gatewayID) \(key)")
            }
        }
    }

    struct Certify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Certify a gateway's member key with the fleet key.",
            discussion: "Writes a certificate to install as STATE/member.cert on that gateway; peers trusting the fleet key then accept its invalidations.")

        @Option(help: "Fleet private key (fleet.key).") var key: String
        @Option(help: "Fleet name.") var fleet: String
        @Option(help: "Gateway id.") var gateway: String
        @Option(help: "The gateway's member public key (base64, from outpost member key).") var publicKey: String
        @Option(help: "Where to write the certificate.") var out: String

        func run() throws {
            let signing: SigningKey
            do { signing = try SigningKey.load(path: key) } catch { throw CLIError(error.message) }
            do { _ = try FleetTopics(fleet: fleet, gateway: gateway) } catch { throw CLIError("\(error)") }
            guard let raw = Data(base64Encoded: publicKey), let memberKey = try? Ed25519.PublicKey(rawRepresentation: raw) else {
                throw CLIError("--public-key must be a 32-byte Ed25519 public key in base64")
            }
            let certificate: MemberCertificate
            do {
                certificate = try MemberCertificate.issue(fleet: fleet, gateway: gateway, publicKey: memberKey,
                                                          keyID: signing.keyID, signer: signing.privateKey)
                try KeyFile.write(certificate.fileText, to: out, mode: 0o644)
            } catch {
                throw CLIError("\(error)")
            }
            print("certified \(gateway) in fleet \(fleet) with key_id \(signing.keyID): \(out)")
        }
    }
}
