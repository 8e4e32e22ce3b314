import FoundationEssentials
import OutpostCore

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
