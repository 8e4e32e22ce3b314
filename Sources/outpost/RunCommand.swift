import Agent
import ArgumentParser
import CoreMetrics
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import OutpostCore
import FleetConfig
import Logging
import PeerSync
import Prometheus
import MQTT

/// Flags that say where the agent is (shared by `run` and the socket clients).
struct AgentLocationOptions: ParsableArguments {
    @Option(name: .long, help: "Config file (JSON); also $OUTPOST_CONFIG.") var config: String?
    @Option(name: .long, help: "State directory (cache database); default $STATE_DIRECTORY or ~/.local/state/outpost.") var stateDir: String?
    @Option(name: .long, help: "Unix socket path; default $RUNTIME_DIRECTORY/outpost.sock, $XDG_RUNTIME_DIR/outpost/outpost.sock or the state directory.") var socket: String?

    func overrides() -> AgentConfiguration.Overrides {
        var o = AgentConfiguration.Overrides()
        o.configFile = config
        o.stateDirectory = stateDir
        o.socketPath = socket
        return o
    }

    func resolve() throws -> AgentConfiguration {
        do {
            return try AgentConfiguration.resolve(overrides(), environment: ProcessInfo.processInfo.environment)
        } catch let e as AgentConfiguration.Error {
            throw CLIError(e.description)
        }
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the agent: the model behind an OpenAI-compatible API on a Unix socket, with the answer cache.",
        discussion: "Runs on embedded defaults with no arguments. Flags win over $OUTPOST_* variables, which win over the config file.")

    @OptionGroup var location: AgentLocationOptions
    @Option(name: .long, help: "GGUF model file; default $OUTPOST_MODEL or the fetched default model.") var model: String?
    @Option(name: .long, help: "Group allowed to use the socket (mode 0660).") var socketGroup: String?
    @Option(name: .long, help: "Gateway id; default the host name.") var id: String?
    @Option(name: .long, help: "Generation threads.") var threads: Int?
    @Option(name: .long, help: "KV-cache size in tokens (prompt + answer).") var ctx: Int?
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: String?
    @Option(name: .long, help: "Join a fleet on this MQTT broker: mqtt://host[:1883] or mqtts://host[:8883]; also $OUTPOST_MQTT.") var mqtt: String?
    @Option(name: .long, help: "Fleet name (topics under outpost/<fleet>); also $OUTPOST_FLEET.") var fleet: String?
    @Option(name: .long, help: "MQTT user name.") var mqttUser: String?
    @Option(name: .long, help: "File holding the MQTT password.") var mqttPasswordFile: String?
    @Option(name: .long, help: "CA file to verify the broker (mqtts://).") var mqttCa: String?
    @Option(name: .long, help: "Client certificate for the broker (mqtts://).") var mqttCert: String?
    @Option(name: .long, help: "Client key for the broker (mqtts://).") var mqttKey: String?
    @Option(name: .customLong("trust-key"), help: "Public key file trusted for fleet configs (repeatable, for rotation).")
    var trustKeys: [String] = []
    @Option(name: .long, help: "Signed fleet config to apply at start (needs --trust-key).") var fleetConfig: String?

    func run() async throws {
        var overrides = location.overrides()
        overrides.modelPath = model
        overrides.socketGroup = socketGroup
        overrides.gatewayID = id
        overrides.threads = threads
        overrides.contextLength = ctx
        overrides.mqttURL = mqtt
        overrides.fleet = fleet
        overrides.mqttUser = mqttUser
        overrides.mqttPasswordFile = mqttPasswordFile
        overrides.mqttCA = mqttCa
        overrides.mqttCert = mqttCert
        overrides.mqttKey = mqttKey
        overrides.trustedKeyFiles = trustKeys
        overrides.fleetConfigFile = fleetConfig
        let configuration: AgentConfiguration
        do {
            configuration = try AgentConfiguration.resolve(overrides, environment: ProcessInfo.processInfo.environment)
        } catch let e as AgentConfiguration.Error {
            throw CLIError(e.description)
        }
        let levelName = logLevel ?? ProcessInfo.processInfo.environment["OUTPOST_LOG_LEVEL"] ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else { throw CLIError("unknown log level \(levelName)") }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        // Files the agent creates are for its own user and group only (the socket is set to 0660).
        umask(0o007)
        let logger = Logger(label: "outpost")
        do {
            try await Agent(configuration: configuration, logger: logger, renderMetrics: { registry.emitToString() }).run()
        } catch let e as Agent.StartError {
            throw CLIError(e.description)
        }
    }
}

struct Ask: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Ask the running agent a question; streams the answer.")

    @OptionGroup var location: AgentLocationOptions
    @Argument(help: "The question.") var question: String
    @Option(name: .long, help: "System message.") var system: String?
    @Option(name: .long, help: "Most tokens to generate.") var maxTokens: Int?
    @Option(name: .long, help: "Sampling temperature (0: greedy, cached).") var temperature: Double?
    @Option(name: .long, help: "Cache mode: use, refresh, bypass.") var cache: String?
    @Flag(name: .long, help: "Print the whole response JSON instead of streaming text.") var json = false

    func run() async throws {
        let socketPath = try location.resolve().socketPath
        var messages: [JSONValue] = []
        if let system { messages.append(.object(["role": .string("system"), "content": .string(system)])) }
        messages.append(.object(["role": .string("user"), "content": .string(question)]))
        var body: [String: JSONValue] = ["messages": .array(messages), "stream": .bool(!json)]
        if let maxTokens { body["max_tokens"] = .int(maxTokens) }
        if let temperature { body["temperature"] = .number(temperature) }
        if let cache { body["cache"] = .string(cache) }
        let data = Data(JSONValue.object(body).encoded())
        let client = UnixSocketClient(path: socketPath)
        if json {
            let r = try client.request("POST", "/v1/chat/completions", body: data)
            StandardStreams.out(r.body)
            StandardStreams.out("\n")
            guard r.status == 200 else { throw ExitCode(1) }
            return
        }
        var pending: [UInt8] = []
        var failure: String?
        let r = try client.request("POST", "/v1/chat/completions", body: data) { chunk in
            pending.append(contentsOf: chunk)
            // Server-sent events end with a blank line.
            while let end = pending.indices.dropLast().first(where: { pending[$0] == 0x0A && pending[$0 + 1] == 0x0A }) {
                let event = String(decoding: pending[..<end], as: UTF8.self)
                pending.removeSubrange(..<(end + 2))
                for line in event.split(separator: "\n") where line.hasPrefix("data: ") {
                    let payload = line.dropFirst(6)
                    if payload == "[DONE]" { continue }
                    guard case .object(let o)? = try? JSONValue.parse(Data(payload.utf8)) else { continue }
                    if case .object(let e)? = o["error"] {
                        if case .string(let m)? = e["message"] { failure = m } else { failure = "error" }
                    } else if case .array(let choices)? = o["choices"], case .object(let choice)? = choices.first,
                              case .object(let delta)? = choice["delta"], case .string(let text)? = delta["content"] {
                        StandardStreams.out(text)
                    }
                }
            }
        }
        if r.status != 200 {
            var message = "HTTP \(r.status)"
            if case .object(let o)? = try? JSONValue.parse(r.body), case .object(let e)? = o["error"],
               case .string(let m)? = e["message"] { message = m }
            throw CLIError(message)
        }
        StandardStreams.out("\n")
        if let failure { throw CLIError(failure) }
    }
}

/// `outpost cache stats` over the socket.
struct CacheStats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Counters of the running agent's answer cache (JSON).")
    @OptionGroup var location: AgentLocationOptions

    func run() async throws {
        let r = try UnixSocketClient(path: try location.resolve().socketPath).request("GET", "/v1/cache/stats")
        StandardStreams.out(r.body)
        StandardStreams.out("\n")
        guard r.status == 200 else { throw ExitCode(1) }
    }
}

/// `outpost cache invalidate` over the socket: durable on the agent before it returns.
struct CacheInvalidate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invalidate", abstract: "Invalidate cached answers on the running agent, or fleet-wide with a fleet key.",
        discussion: """
            Without --fleet-key: through the local agent's socket; the agent drops the answers and tells its peers \
            (signed with its member key). With --fleet-key, --mqtt and --fleet: signed with the fleet key and published \
            to every gateway of the fleet at once; gateways that trust that key (--trust-key) apply it.
            """)
    @OptionGroup var location: AgentLocationOptions
    @Option(name: .long, help: "One cache key (64 hex digits).") var key: String?
    @Option(name: .long, help: "Every answer with this tag.") var tag: String?
    @Option(name: .long, help: "Every answer in this namespace.") var namespace: String?
    @Flag(name: .long, help: "Everything.") var all = false
    @Option(name: .long, help: "Fleet private key (fleet.key): sign and publish to the whole fleet over MQTT.") var fleetKey: String?
    @Option(name: .long, help: "MQTT broker, with --fleet-key: mqtt://host[:1883] or mqtts://host[:8883].") var mqtt: String?
    @Option(name: .long, help: "Fleet name, with --fleet-key.") var fleet: String?
    @Option(name: .long, help: "Topic root, with --fleet-key (default outpost/<fleet>).") var topicRoot: String?
    @Option(name: .long, help: "Origin named in the message, with --fleet-key.") var origin = "operator"
    @Option(name: .long, help: "MQTT user name.") var mqttUser: String?
    @Option(name: .long, help: "File holding the MQTT password.") var mqttPasswordFile: String?
    @Option(name: .long, help: "CA file to verify the broker (mqtts://).") var mqttCa: String?
    @Option(name: .long, help: "Client certificate for the broker (mqtts://).") var mqttCert: String?
    @Option(name: .long, help: "Client key for the broker (mqtts://).") var mqttKey: String?

    func validate() throws {
        let given = [key != nil, tag != nil, namespace != nil, all].filter { $0 }.count
        guard given == 1 else { throw ValidationError("give exactly one of --key, --tag, --namespace, --all") }
        if fleetKey != nil, mqtt == nil || fleet == nil {
            throw ValidationError("--fleet-key needs --mqtt and --fleet")
        }
    }

    private func scope() throws -> InvalidationScope {
        if let key {
            do { return .key(try CacheKey(hex: key)) } catch { throw CLIError("--key: \(error.message)") }
        }
        if let tag { return .tag(tag) }
        if let namespace { return .namespace(namespace) }
        return .all
    }

    /// Signs with the fleet key and publishes to the fleet; prints what was sent.
    private func publishFleetWide(keyPath: String, mqtt: String, fleet: String) async throws {
        let signing: SigningKey
        do { signing = try SigningKey.load(path: keyPath) } catch { throw CLIError(error.message) }
        do {
            let topics = try FleetTopics(fleet: fleet, gateway: origin, root: topicRoot)
            var connection = OperatorInvalidation.Connection(broker: try BrokerURL(mqtt))
            connection.username = mqttUser
            if let file = mqttPasswordFile {
                guard let data = FileManager.default.contents(atPath: file), var text = String(data: data, encoding: .utf8) else {
                    throw CLIError("cannot read the MQTT password file \(file)")
                }
                while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
                connection.password = text
            }
            connection.caFile = mqttCa
            connection.certFile = mqttCert
            connection.keyFile = mqttKey
            let message = try OperatorInvalidation.message(
                scope: try scope(), origin: origin, fleet: fleet, keyID: signing.keyID, key: signing.privateKey,
                nowMillis: UInt64(Date().timeIntervalSince1970 * 1000))
            try await OperatorInvalidation.publish(message, topics: topics, over: connection)
            StandardStreams.out(Data(JSONValue.object([
                "published": .string(topics.invalidations), "key_id": .string(signing.keyID),
                "hlc": .string(message.tombstone.hlc.description), "origin": .string(origin),
            ]).encoded()) + Data("\n".utf8))
        } catch let e as CLIError {
            throw e
        } catch {
            throw CLIError("fleet invalidation: \(error)")
        }
    }

    func run() async throws {
        if let fleetKey, let mqtt, let fleet {
            try await publishFleetWide(keyPath: fleetKey, mqtt: mqtt, fleet: fleet)
            return
        }
        var body: [String: JSONValue] = [:]
        if let key { body["key"] = .string(key) }
        if let tag { body["tag"] = .string(tag) }
        if let namespace { body["namespace"] = .string(namespace) }
        if all { body["all"] = .bool(true) }
        let r = try UnixSocketClient(path: try location.resolve().socketPath)
            .request("POST", "/v1/cache/invalidate", body: Data(JSONValue.object(body).encoded()))
        StandardStreams.out(r.body)
        StandardStreams.out("\n")
        guard r.status == 200 else { throw ExitCode(1) }
    }
}
