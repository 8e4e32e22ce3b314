import AnswerCache
import FoundationEssentials
import OutpostCore

/// Everything `outpost run` needs, resolved from (lowest first) embedded defaults, the config
/// file, `OUTPOST_*` environment variables and command-line flags.
public struct AgentConfiguration: Sendable, Equatable {
    public var modelPath: String
    public var stateDirectory: String
    public var socketPath: String
    public var socketGroup: String?
    public var gatewayID: String
    /// Generation threads.
    public var threads: Int
    /// KV-cache size in tokens (prompt + answer); bounded by the model's own context length.
    public var contextLength: Int
    /// Requests waiting for the model beyond the one running; more are refused with 503.
    public var maxQueuedRequests: Int = 8
    /// Largest `max_tokens` a request may ask for.
    public var maxTokensLimit: Int = 2048
    /// A connection to the API socket must send its request head within this many seconds of
    /// opening (or of its last response); an idle keep-alive connection is closed after it.
    public var idleTimeoutSeconds: Int = 5
    /// API connections served in full; at the cap a new one replaces the longest-idle one.
    public var maxConnections: Int = 256
    /// API connections beyond the cap, when every connection is busy, that answer only `/health`
    /// and the admin endpoints.
    public var reservedConnections: Int = 16
    /// How long a graceful shutdown waits for in-flight requests before cancelling them.
    public var shutdownGraceSeconds: Int = 10
    /// Sampling defaults for fields a request leaves out.
    public var defaults = SamplingParameters(temperature: 0, maxTokens: 256)
    public var cache = Cache()
    /// The fleet over MQTT; nil runs local-only.
    public var mqtt: MQTT?

    /// `--mqtt URL --fleet F [--mqtt-user U --mqtt-password-file P --mqtt-ca CA --mqtt-cert C --mqtt-key K]`
    /// or the config file's `mqtt` section. The gateway id is `gatewayID`.
    public struct MQTT: Sendable, Equatable {
        public var url: String
        public var fleet: String
        public var user: String?
        public var passwordFile: String?
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        /// Topic root; `outpost/<fleet>` when nil (a fleet config's `mqtt.topic_root`).
        public var topicRoot: String?
        public init(url: String, fleet: String) {
            self.url = url
            self.fleet = fleet
        }
    }

    public struct Cache: Sendable, Equatable {
        public var memoryBudgetBytes = 64 << 20
        public var diskBudgetBytes = 1 << 30
        public var ttlSeconds = 24 * 3600
        public var staleWhileRevalidateSeconds = 3600
        public var flushIntervalMillis = 100
        public var batchSize = 512
        public var queueCapacity = 65_536
        /// zstd level (1…22) for stored answers over the compression threshold.
        public var compressionLevel = 1
        public init() {}

        /// What the answer cache opens with (its file is `path`).
        func configuration(path: String) -> AnswerCache.Configuration {
            var c = AnswerCache.Configuration(path: path)
            c.memoryBudgetBytes = memoryBudgetBytes
            c.diskBudgetBytes = diskBudgetBytes
            c.batchSize = batchSize
            c.queueCapacity = queueCapacity
            c.flushIntervalMillis = UInt64(flushIntervalMillis)
            c.defaultTTLMillis = UInt64(ttlSeconds) * 1000
            c.defaultStaleWhileRevalidateMillis = UInt64(staleWhileRevalidateSeconds) * 1000
            c.compressionLevel = Int32(clamping: compressionLevel)
            return c
        }
    }

    /// Public keys trusted for fleet configs (`--trust-key`, repeatable for rotation).
    public var trustedKeyFiles: [String] = []
    /// A signed fleet config to apply at start (`--fleet-config`).
    public var fleetConfigFile: String?
    /// Member keys of the live fleet config (`members`): peers whose signed invalidations are accepted.
    public var members: [String: Ed25519.PublicKey] = [:]

    public var cacheFile: String { Paths.join(stateDirectory, "cache.sqlite") }

    public struct Error: Swift.Error, CustomStringConvertible, Sendable {
        public let description: String
        init(_ d: String) { description = d }
    }

    /// Flags given on the command line (nil = not given).
    public struct Overrides: Sendable {
        public var configFile: String?
        public var modelPath: String?
        public var stateDirectory: String?
        public var socketPath: String?
        public var socketGroup: String?
        public var gatewayID: String?
        public var threads: Int?
        public var contextLength: Int?
        public var mqttURL: String?
        public var fleet: String?
        public var mqttUser: String?
        public var mqttPasswordFile: String?
        public var mqttCA: String?
        public var mqttCert: String?
        public var mqttKey: String?
        public var trustedKeyFiles: [String] = []
        public var fleetConfigFile: String?
        public init() {}
    }

    /// Resolves the configuration. `environment` is the process environment (injected for tests).
    public static func resolve(_ flags: Overrides, environment: [String: String]) throws -> AgentConfiguration {
        let env = environment.filter { !$0.value.isEmpty }
        let home = env["HOME"] ?? homeDirectory()

        // Embedded defaults.
        let stateDefault = env["STATE_DIRECTORY"].map { String($0.split(separator: ":").first ?? "") }
            ?? Paths.join(env["XDG_STATE_HOME"] ?? Paths.join(home, ".local/state"), "outpost")
        let cacheHome = env["XDG_CACHE_HOME"] ?? Paths.join(home, ".cache")
        let modelDefault = Paths.join(env["OUTPOST_MODEL_CACHE"] ?? Paths.join(cacheHome, "outpost/models"),
                                      "SmolLM2-135M-Instruct.Q4_1.gguf")
        var c = AgentConfiguration(
            modelPath: modelDefault, stateDirectory: stateDefault, socketPath: "", socketGroup: nil,
            gatewayID: ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "outpost",
            threads: max(1, min(4, ProcessInfo.processInfo.activeProcessorCount)), contextLength: 2048)
        var socketFromFile: String?

        // Config file.
        if let path = flags.configFile ?? env["OUTPOST_CONFIG"] {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
                throw Error("cannot read config file \(path): \(error)")
            }
            let file = try ConfigFile.parse(data, path: path)
            try file.apply(to: &c, socket: &socketFromFile)
        }

        // Environment: the table's variables (the mqtt ones join the flags below: a link needs a URL).
        func envValue(_ key: String) -> String? { Settings.named(key)?.environment.flatMap { env[$0] } }
        for setting in Settings.all where setting.section != "mqtt" {
            guard let name = setting.environment, let text = env[name] else { continue }
            let value: JSONValue
            do throws(SettingError) { value = try setting.parse(environment: text) } catch { throw Error(error.message) }
            if setting.key == "socket.path" { socketFromFile = text } else { c.set(setting, value) }
        }
        var mqttURL = c.mqtt?.url
        var fleet = c.mqtt?.fleet
        if let v = envValue("mqtt.url") { mqttURL = v }
        if let v = envValue("mqtt.fleet") { fleet = v }

        // Flags, through the same table.
        let flagged: [(flag: String, key: String, value: JSONValue?)] = [
            ("--model", "model.path", flags.modelPath.map(JSONValue.string)),
            ("--state-dir", "state_dir", flags.stateDirectory.map(JSONValue.string)),
            ("--socket-group", "socket.group", flags.socketGroup.map(JSONValue.string)),
            ("--id", "gateway_id", flags.gatewayID.map(JSONValue.string)),
            ("--threads", "model.threads", flags.threads.map { .number(Double($0)) }),
            ("--ctx", "model.context_length", flags.contextLength.map { .number(Double($0)) }),
        ]
        for (flag, key, value) in flagged {
            guard let value, let setting = Settings.named(key) else { continue }
            do { c.set(setting, try setting.check(value)) } catch {
                let shown = if case .number(let d) = value { "\(Int(d))" } else if case .string(let t) = value { t } else { "" }
                throw Error("\(flag) \(shown): must be \(setting.kind.expected)")
            }
        }
        if let v = flags.socketPath { socketFromFile = v }
        try c.resolveMQTT(url: flags.mqttURL ?? mqttURL, fleet: flags.fleet ?? fleet, flags: flags,
                          user: envValue("mqtt.user"), passwordFile: envValue("mqtt.password_file"))
        c.trustedKeyFiles = flags.trustedKeyFiles
        c.fleetConfigFile = flags.fleetConfigFile

        c.socketPath = socketFromFile ?? defaultSocket(env: env, stateDirectory: c.stateDirectory)
        return c
    }

    /// The fleet link from the URL and fleet (file, environment or flags, the last one given
    /// wins) and the `--mqtt-*` flags, which need a URL.
    private mutating func resolveMQTT(url: String?, fleet: String?, flags: Overrides, user: String?, passwordFile: String?) throws {
        guard let url else {
            if fleet != nil || flags.mqttUser != nil || flags.mqttPasswordFile != nil || flags.mqttCA != nil
                || flags.mqttCert != nil || flags.mqttKey != nil {
                throw Error("--fleet and the --mqtt-* flags need --mqtt URL")
            }
            return
        }
        guard let fleet, !fleet.isEmpty else { throw Error("--mqtt needs --fleet (or mqtt.fleet in the config file)") }
        var m = mqtt ?? MQTT(url: url, fleet: fleet)
        m.url = url
        m.fleet = fleet
        if let v = user { m.user = v }
        if let v = passwordFile { m.passwordFile = v }
        if let v = flags.mqttUser { m.user = v }
        if let v = flags.mqttPasswordFile { m.passwordFile = v }
        if let v = flags.mqttCA { m.caFile = v }
        if let v = flags.mqttCert { m.certFile = v }
        if let v = flags.mqttKey { m.keyFile = v }
        mqtt = m
    }

    /// `$RUNTIME_DIRECTORY/outpost.sock` (systemd), else `$XDG_RUNTIME_DIR/outpost/outpost.sock`,
    /// else `outpost.sock` in the state directory.
    static func defaultSocket(env: [String: String], stateDirectory: String) -> String {
        if let r = env["RUNTIME_DIRECTORY"].map({ String($0.split(separator: ":").first ?? "") }), !r.isEmpty {
            return Paths.join(r, "outpost.sock")
        }
        if let x = env["XDG_RUNTIME_DIR"] {
            return Paths.join(x, "outpost/outpost.sock")
        }
        return Paths.join(stateDirectory, "outpost.sock")
    }

}

extension AgentConfiguration {
    /// Where each setting of the table (`Settings.all`) goes: the one mapping the config file,
    /// the environment, the flags and the fleet overlay all go through. `value` was checked
    /// against the setting's kind. `socket.path` is kept aside by the caller (its default
    /// depends on the state directory), so it is not handled here.
    mutating func set(_ setting: Setting, _ value: JSONValue) {
        let string: String = if case .string(let s) = value { s } else { "" }
        let number: Double = if case .number(let d) = value { d } else { 0 }
        let int = Int(exactly: number.rounded()) ?? 0
        switch setting.key {
        case "state_dir": stateDirectory = string
        case "gateway_id": gatewayID = string
        case "board": break  // a label for the operator (board/*/outpost.json), not used by the agent
        case "model.path": modelPath = string
        case "model.threads": threads = int
        case "model.context_length": contextLength = int
        case "socket.group": socketGroup = string
        case "generation.temperature": defaults.temperature = number
        case "generation.top_k": defaults.topK = int
        case "generation.top_p": defaults.topP = number
        case "generation.max_tokens": defaults.maxTokens = int
        case "generation.max_tokens_limit": maxTokensLimit = int
        case "generation.repeat_penalty": defaults.repeatPenalty = number
        case "limits.max_queued_requests": maxQueuedRequests = int
        case "limits.idle_timeout_s": idleTimeoutSeconds = int
        case "limits.max_connections": maxConnections = int
        case "limits.reserved_connections": reservedConnections = int
        case "limits.shutdown_grace_s": shutdownGraceSeconds = int
        case "cache.memory_budget_mb": cache.memoryBudgetBytes = int << 20
        case "cache.disk_budget_mb": cache.diskBudgetBytes = int << 20
        case "cache.ttl_s": cache.ttlSeconds = int
        case "cache.stale_while_revalidate_s": cache.staleWhileRevalidateSeconds = int
        case "cache.flush_interval_ms": cache.flushIntervalMillis = int
        case "cache.batch_size": cache.batchSize = int
        case "cache.queue_capacity": cache.queueCapacity = int
        case "cache.compression_level": cache.compressionLevel = int
        case "mqtt.url": mqttSection.url = string
        case "mqtt.fleet": mqttSection.fleet = string
        case "mqtt.user": mqttSection.user = string
        case "mqtt.password_file": mqttSection.passwordFile = string
        case "mqtt.ca": mqttSection.caFile = string
        case "mqtt.cert": mqttSection.certFile = string
        case "mqtt.key": mqttSection.keyFile = string
        // Only a fleet config moves the topic root, and only for a gateway that is in a fleet.
        case "mqtt.topic_root": if mqtt != nil { mqtt?.topicRoot = string }
        default: preconditionFailure("setting \(setting.key) is in the table but not mapped")
        }
    }

    /// The `mqtt` section being filled in (the link is made once `url` and `fleet` are both set).
    private var mqttSection: MQTT {
        get { mqtt ?? MQTT(url: "", fleet: "") }
        set { mqtt = newValue }
    }
}
