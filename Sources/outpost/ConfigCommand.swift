import Agent
import AnswerCache
import ArgumentParser
import FleetConfig
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import OutpostCore

/// `outpost config …`: fleet-config signing tools and a view of the committed config.
struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Fleet configuration: keys, signing, verification, the committed config.",
        subcommands: [Keygen.self, Sign.self, Verify.self, Show.self]
    )

    /// AnswerCache's zstd, for payloads signed with `--zstd` (FleetConfig itself has no zstd).
    static let zstdDecompress: @Sendable ([UInt8], Int) throws -> [UInt8] = { frame, limit in
        try Zstd.decompress(frame, limit: limit)
    }

    /// Runs `body`, reporting a FleetConfigError as a one-line CLI error.
    static func reporting(_ body: () throws -> Void) throws {
        do { try body() } catch let error as FleetConfigError { throw CLIError(error.message) }
    }

    static func read(_ path: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read \(path)") }
        return data
    }

    static func writeFile(_ data: Data, to path: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw CLIError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else { throw CLIError("cannot set the mode of \(path)") }
        let ok = data.withUnsafeBytes { write(fd, $0.baseAddress, data.count) == data.count }
        guard ok, fsync(fd) == 0 else { throw CLIError("cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    /// `24h`, `30m`, `7d`, `90s` or plain seconds.
    static func duration(_ text: String) throws -> Int64 {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var digits = Substring(text)
        var unit: Int64 = 1
        if let last = text.last, let u = units[last] { unit = u; digits = digits.dropLast() }
        guard let n = Int64(digits), n > 0 else { throw CLIError("--expires \(text): give a duration such as 24h, 30m, 7d or 3600") }
        return n * unit
    }

    static func summary(_ config: VerifiedConfig) -> [String: Any] {
        var keys: [String] = []
        for (section, fields) in config.settings.sections { keys += fields.keys.map { "\(section).\($0)" } }
        var o: [String: Any] = [
            "version": Int64(clamping: config.version), "target": config.envelope.target, "key_id": config.envelope.keyID,
            "issued_at": config.envelope.issuedAt, "encoding": config.envelope.encoding, "keys": keys.sorted(),
            "payload_bytes": config.envelope.payload.count,
        ]
        o["expires_at"] = config.envelope.expiresAt.map { JSONValue.number(Double($0)) } ?? JSONValue.null
        return o
    }
}

extension Config {
    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a signing key pair: DIR/fleet.key (mode 0600) and DIR/fleet.pub.",
            discussion: "Both are text: a header line, \"key_id: ID\" and \"ed25519: <base64 raw key>\". Give fleet.pub to gateways with --trust-key.")

        @Option(help: "Directory for fleet.key and fleet.pub (created if missing).") var out: String
        @Option(help: "Key id carried in signed configs (default: derived from the public key).") var keyId: String?
        @Flag(help: "Replace existing key files.") var force = false

        func run() throws {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let keyPath = Paths.join(out, "fleet.key")
            let pubPath = Paths.join(out, "fleet.pub")
            if !force, FileManager.default.fileExists(atPath: keyPath) {
                throw CLIError("\(keyPath) exists; pass --force to replace it")
            }
            if let keyId, keyId.isEmpty || keyId.contains(where: \.isWhitespace) {
                throw CLIError("--key-id must be non-empty without spaces")
            }
            let key = SigningKey.generate(keyID: keyId)
            try Config.writeFile(Data(key.fileText.utf8), to: keyPath, mode: 0o600)
            try Config.writeFile(Data(key.trustedKey.fileText.utf8), to: pubPath, mode: 0o644)
            print("key_id \(key.keyID): private key \(keyPath), public key \(pubPath)")
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a config payload (JSON) into an envelope.",
            discussion: "The payload is validated first (unknown keys refused) and carried byte for byte.")

        @Option(help: "Private key file (fleet.key).") var key: String
        @Option(help: "Config version; must be above the version gateways applied.") var version: UInt64
        @Option(name: .customLong("in"), help: "Payload JSON file.") var input: String
        @Option(help: "\"fleet\" (default) or one gateway's id.") var target = "fleet"
        @Option(help: "Expiry from now: 24h, 30m, 7d or seconds.") var expires: String?
        @Flag(help: "Compress the payload with zstd.") var zstd = false
        @Option(help: "Where to write the signed envelope.") var out: String

        func run() throws { try Config.reporting(sign) }

        private func sign() throws {
            guard version >= 1 else { throw CLIError("--version must be 1 or more") }
            let signing = try SigningKey.load(path: key)
            let payload = try Config.read(input)
            _ = try FleetSettings(payload: Array(payload))
            let now = Int64(Date().timeIntervalSince1970)
            let expiresAt = try expires.map { now + (try Config.duration($0)) }
            let carried = try zstd ? Zstd.compress(Array(payload)) : Array(payload)
            let envelope = try signing.sign(payload: carried, version: version, target: target,
                                            encoding: zstd ? "zstd" : "json", issuedAt: now, expiresAt: expiresAt)
            let data = envelope.encoded()
            guard data.count <= ConfigVerifier.defaultMaxEnvelopeBytes else {
                throw CLIError("the signed config is \(data.count) bytes, over the \(ConfigVerifier.defaultMaxEnvelopeBytes)-byte limit gateways accept; try --zstd")
            }
            try Config.writeFile(data + Data("\n".utf8), to: out, mode: 0o644)
            StandardStreams.err("signed version \(version) for \(target) with key \(signing.keyID): \(out)\n")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a signed config as a gateway would: exit 0 with a summary, or 1 with the reason.")

        @Option(name: .customLong("trust-key"), help: "Trusted public key file (repeatable, for rotation).") var trustKeys: [String] = []
        @Option(name: .customLong("in"), help: "Signed envelope file.") var input: String
        @Option(help: "Check the target against this gateway id (default: any gateway target is accepted).") var gatewayId: String?
        @Option(help: "Treat this version as already applied (replay/downgrade check).") var appliedVersion: UInt64 = 0
        @Flag(help: "Print JSON.") var json = false

        func run() throws { try Config.reporting(verify) }

        private func verify() throws {
            guard !trustKeys.isEmpty else { throw CLIError("give at least one --trust-key") }
            let keys = try trustKeys.map { try TrustedKey.load(path: $0) }
            let data = try Config.read(input)
            let target = (try? ConfigEnvelope.parse(data))?.target
            let gateway = gatewayId ?? (target == "fleet" ? nil : target)
            let verifier = ConfigVerifier(trustedKeys: keys, gatewayID: gateway, zstdDecompress: Config.zstdDecompress)
            let applied = AppliedVersions(fleet: appliedVersion, gateway: appliedVersion)
            let config: VerifiedConfig
            do { config = try verifier.verify(data, applied: applied, now: Int64(Date().timeIntervalSince1970)) } catch {
                throw CLIError("config rejected (\(error.reason)): \(error.message)")
            }
            let summary = Config.summary(config)
            if json {
                try JSONOutput.print(object: summary)
            } else {
                print("valid: version \(config.version), target \(config.envelope.target), key \(config.envelope.keyID), "
                      + "keys \((summary["keys"] as? [String] ?? []).joined(separator: ","))")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the committed fleet config and its versions.")

        @Option(help: "State directory (default as for outpost run).") var stateDir: String?

        func run() throws { try Config.reporting(show) }

        private func show() throws {
            var overrides = AgentConfiguration.Overrides()
            overrides.stateDirectory = stateDir
            let state = try AgentConfiguration.resolve(overrides, environment: ProcessInfo.processInfo.environment).stateDirectory
            let store = try ConfigStore(stateDirectory: state)
            let record = try store.committed()
            let settings = try JSONValue.parse(record.effective.encoded())
            try JSONOutput.print(object: [
                "version": Int64(clamping: record.versions.fleet), "gateway_version": Int64(clamping: record.versions.gateway),
                "state": record.state.rawValue, "config": settings,
            ] as [String: Any])
        }
    }
}
