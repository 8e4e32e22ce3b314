import FoundationEssentials
import OutpostCore

/// The agent's config file (JSON). Every key is optional; unknown keys are refused by name so a
/// typo never silently does nothing.
///
/// ```json
/// {"model": {"path": "...", "threads": 4, "context_length": 2048},
///  "state_dir": "...", "gateway_id": "gw-1",
///  "socket": {"path": "...", "group": "outpost"},
///  "generation": {"temperature": 0, "top_k": 40, "top_p": 0.95, "max_tokens": 256, "max_tokens_limit": 2048},
///  "limits": {"max_queued_requests": 8, "idle_timeout_s": 5, "max_connections": 256,
///             "reserved_connections": 16, "shutdown_grace_s": 10},
///  "cache": {"memory_budget_mb": 64, "disk_budget_mb": 1024, "ttl_s": 86400, "stale_while_revalidate_s": 3600,
///            "flush_interval_ms": 100, "batch_size": 512, "queue_capacity": 65536},
///  "mqtt": {"url": "mqtts://broker:8883", "fleet": "site-a", "user": "gw-1", "password_file": "...",
///           "ca": "...", "cert": "...", "key": "..."}}
/// ```
struct ConfigFile {
    let root: [String: JSONValue]
    let path: String

    static let sections: [String: Set<String>] = [
        "model": ["path", "threads", "context_length"],
        "socket": ["path", "group"],
        "generation": ["temperature", "top_k", "top_p", "max_tokens", "max_tokens_limit", "repeat_penalty"],
        "limits": ["max_queued_requests", "idle_timeout_s", "max_connections", "reserved_connections", "shutdown_grace_s"],
        "mqtt": ["url", "fleet", "user", "password_file", "ca", "cert", "key"],
        "cache": ["memory_budget_mb", "disk_budget_mb", "ttl_s", "stale_while_revalidate_s", "flush_interval_ms",
                  "batch_size", "queue_capacity"],
    ]
    static let scalars: Set<String> = ["state_dir", "gateway_id", "board"]

    static func parse(_ data: Data, path: String) throws -> ConfigFile {
        let value: JSONValue
        do { value = try JSONValue.parse(data) } catch {
            throw AgentConfiguration.Error("config file \(path): \(error.message)")
        }
        guard case .object(let root) = value else { throw AgentConfiguration.Error("config file \(path): must be a JSON object") }
        for (key, v) in root {
            if scalars.contains(key) { continue }
            guard let allowed = sections[key] else { throw AgentConfiguration.Error("config file \(path): unknown key \"\(key)\"") }
            guard case .object(let section) = v else { throw AgentConfiguration.Error("config file \(path): \"\(key)\" must be an object") }
            for k in section.keys where !allowed.contains(k) {
                throw AgentConfiguration.Error("config file \(path): unknown key \"\(key).\(k)\"")
            }
        }
        return ConfigFile(root: root, path: path)
    }

    private func section(_ name: String) -> CompletionRequest.Fields {
        if case .object(let o)? = root[name] { return CompletionRequest.Fields(object: o) }
        return CompletionRequest.Fields(object: [:])
    }

    private func wrap<T>(_ key: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as QueryError {
            throw AgentConfiguration.Error("config file \(path): \(key): \(e.message)")
        }
    }

    func apply(to c: inout AgentConfiguration, socket: inout String?) throws {
        let top = CompletionRequest.Fields(object: root)
        try wrap("top level") {
            if let v = try top.string("state_dir") { c.stateDirectory = v }
            if let v = try top.string("gateway_id") { c.gatewayID = v }
        }
        let model = section("model")
        try wrap("model") {
            if let v = try model.string("path") { c.modelPath = v }
            if let v = try model.int("threads") { c.threads = v }
            if let v = try model.int("context_length") { c.contextLength = v }
        }
        let sock = section("socket")
        try wrap("socket") {
            if let v = try sock.string("path") { socket = v }
            if let v = try sock.string("group") { c.socketGroup = v }
        }
        let gen = section("generation")
        try wrap("generation") {
            if let v = try gen.double("temperature") { c.defaults.temperature = v }
            if let v = try gen.int("top_k") { c.defaults.topK = v }
            if let v = try gen.double("top_p") { c.defaults.topP = v }
            if let v = try gen.int("max_tokens") { c.defaults.maxTokens = v }
            if let v = try gen.double("repeat_penalty") { c.defaults.repeatPenalty = v }
            if let v = try gen.int("max_tokens_limit") { c.maxTokensLimit = v }
            try c.defaults.validate()
        }
        let limits = section("limits")
        try wrap("limits") {
            if let v = try limits.int("max_queued_requests") { c.maxQueuedRequests = v }
            if let v = try limits.int("idle_timeout_s") { c.idleTimeoutSeconds = v }
            if let v = try limits.int("max_connections") { c.maxConnections = v }
            if let v = try limits.int("reserved_connections") { c.reservedConnections = v }
            if let v = try limits.int("shutdown_grace_s") { c.shutdownGraceSeconds = v }
        }
        let cache = section("cache")
        try wrap("cache") {
            if let v = try cache.int("memory_budget_mb") { c.cache.memoryBudgetBytes = v << 20 }
            if let v = try cache.int("disk_budget_mb") { c.cache.diskBudgetBytes = v << 20 }
            if let v = try cache.int("ttl_s") { c.cache.ttlSeconds = v }
            if let v = try cache.int("stale_while_revalidate_s") { c.cache.staleWhileRevalidateSeconds = v }
            if let v = try cache.int("flush_interval_ms") { c.cache.flushIntervalMillis = v }
            if let v = try cache.int("batch_size") { c.cache.batchSize = v }
            if let v = try cache.int("queue_capacity") { c.cache.queueCapacity = v }
        }
        let mqtt = section("mqtt")
        try wrap("mqtt") {
            let url = try mqtt.string("url")
            let fleet = try mqtt.string("fleet")
            if url != nil || fleet != nil || !mqtt.object.isEmpty {
                guard let url, let fleet else {
                    throw QueryError.invalidParameter("url and fleet", "are both required to join a fleet")
                }
                var m = AgentConfiguration.MQTT(url: url, fleet: fleet)
                m.user = try mqtt.string("user")
                m.passwordFile = try mqtt.string("password_file")
                m.caFile = try mqtt.string("ca")
                m.certFile = try mqtt.string("cert")
                m.keyFile = try mqtt.string("key")
                c.mqtt = m
            }
        }
        for (name, v) in [("model.threads", c.threads), ("model.context_length", c.contextLength),
                          ("generation.max_tokens_limit", c.maxTokensLimit),
                          ("cache.batch_size", c.cache.batchSize), ("cache.queue_capacity", c.cache.queueCapacity),
                          ("cache.flush_interval_ms", c.cache.flushIntervalMillis), ("limits.idle_timeout_s", c.idleTimeoutSeconds),
                          ("limits.max_connections", c.maxConnections)]
            where v <= 0 {
            throw AgentConfiguration.Error("config file \(path): \(name) must be positive, is \(v)")
        }
        if c.maxQueuedRequests < 0 {
            throw AgentConfiguration.Error("config file \(path): limits.max_queued_requests must be 0 or more")
        }
        if c.reservedConnections < 0 {
            throw AgentConfiguration.Error("config file \(path): limits.reserved_connections must be 0 or more")
        }
    }
}
