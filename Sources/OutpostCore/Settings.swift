/// Every setting of the agent, declared once: its key, type and bounds, where it may be set
/// (config file, environment, fleet config) and whether a fleet config applies it while the agent
/// runs. The config file, the environment, the command-line flags and the fleet overlay all read
/// settings through this table and hand the checked value to one mapping
/// (`AgentConfiguration.set`). Unknown keys are refused by name.
///
/// Adding a setting: one entry here, one case in `AgentConfiguration.set`, and its use.
public struct Setting: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case string
        /// Any finite number.
        case number
        case positiveInteger
        case nonNegativeInteger

        /// What a value must be, for messages ("a positive integer").
        public var expected: String {
            switch self {
            case .string: "a non-empty string"
            case .number: "a number"
            case .positiveInteger: "a positive integer"
            case .nonNegativeInteger: "an integer, 0 or more"
            }
        }
    }

    /// Where a setting may come from.
    public struct Sources: OptionSet, Sendable, Hashable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let file = Sources(rawValue: 1)
        /// A signed fleet config; such settings are applied while the agent runs.
        public static let fleet = Sources(rawValue: 2)
    }

    /// `section.field` (`cache.ttl_s`) or a top-level field (`state_dir`).
    public let key: String
    public let kind: Kind
    public let sources: Sources
    /// The environment variable that sets it, if any (`OUTPOST_THREADS`).
    public let environment: String?

    public init(_ key: String, _ kind: Kind, _ sources: Sources = .file, environment: String? = nil) {
        self.key = key
        self.kind = kind
        self.sources = sources
        self.environment = environment
    }

    /// The section (`cache`) and field (`ttl_s`); a top-level key has no section.
    public var section: String? { key.firstIndex(of: ".").map { String(key[..<$0]) } }
    public var field: String { key.firstIndex(of: ".").map { String(key[key.index(after: $0)...]) } ?? key }

    /// `value` if it is of this setting's kind, else an error naming the key and what it must be.
    public func check(_ value: JSONValue) throws(SettingError) -> JSONValue {
        switch (kind, value) {
        case (.string, .string(let s)) where !s.isEmpty: return value
        case (.number, .number(let d)) where d.isFinite: return value
        case (.positiveInteger, .number(let d)) where d == d.rounded() && d >= 1 && d <= 1e15: return value
        case (.nonNegativeInteger, .number(let d)) where d == d.rounded() && d >= 0 && d <= 1e15: return value
        default: throw SettingError(key: key, message: "\(key) must be \(kind.expected)")
        }
    }

    /// Reads an environment variable's text as this setting's kind.
    public func parse(environment text: String) throws(SettingError) -> JSONValue {
        switch kind {
        case .string: return try check(.string(text))
        case .number, .positiveInteger, .nonNegativeInteger:
            guard let d = Double(text) else {
                throw SettingError(key: key, message: "\(environment ?? key)=\(text): must be \(kind.expected)")
            }
            do { return try check(.number(d)) } catch {
                throw SettingError(key: key, message: "\(environment ?? key)=\(text): must be \(kind.expected)")
            }
        }
    }
}

/// A setting that is unknown or has a value of the wrong kind.
public struct SettingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let key: String
    public let message: String
    /// The key is not a setting (or not one this source may set).
    public let isUnknownKey: Bool
    public var description: String { message }

    public init(key: String, message: String, isUnknownKey: Bool = false) {
        self.key = key
        self.message = message
        self.isUnknownKey = isUnknownKey
    }
}

public enum Settings {
    /// The table.
    public static let all: [Setting] = [
        Setting("state_dir", .string, environment: "OUTPOST_STATE_DIR"),
        Setting("gateway_id", .string, environment: "OUTPOST_GATEWAY_ID"),
        Setting("board", .string),
        Setting("model.path", .string, [.file, .fleet], environment: "OUTPOST_MODEL"),
        Setting("model.threads", .positiveInteger, environment: "OUTPOST_THREADS"),
        Setting("model.context_length", .positiveInteger, environment: "OUTPOST_CTX"),
        Setting("socket.path", .string, environment: "OUTPOST_SOCKET"),
        Setting("socket.group", .string, environment: "OUTPOST_SOCKET_GROUP"),
        Setting("generation.temperature", .number, [.file, .fleet]),
        Setting("generation.top_k", .nonNegativeInteger, [.file, .fleet]),
        Setting("generation.top_p", .number, [.file, .fleet]),
        Setting("generation.max_tokens", .positiveInteger, [.file, .fleet]),
        Setting("generation.max_tokens_limit", .positiveInteger, [.file, .fleet]),
        Setting("generation.repeat_penalty", .number, [.file, .fleet]),
        Setting("limits.max_queued_requests", .nonNegativeInteger),
        Setting("limits.idle_timeout_s", .positiveInteger),
        Setting("limits.max_connections", .positiveInteger),
        Setting("limits.reserved_connections", .nonNegativeInteger),
        Setting("limits.shutdown_grace_s", .nonNegativeInteger),
        Setting("cache.memory_budget_mb", .nonNegativeInteger, [.file, .fleet]),
        Setting("cache.disk_budget_mb", .nonNegativeInteger, [.file, .fleet]),
        Setting("cache.ttl_s", .nonNegativeInteger, [.file, .fleet]),
        Setting("cache.stale_while_revalidate_s", .nonNegativeInteger, [.file, .fleet]),
        Setting("cache.flush_interval_ms", .positiveInteger, [.file, .fleet]),
        Setting("cache.batch_size", .positiveInteger, [.file, .fleet]),
        Setting("cache.queue_capacity", .positiveInteger, [.file, .fleet]),
        Setting("cache.compression_level", .positiveInteger),
        Setting("mqtt.url", .string, environment: "OUTPOST_MQTT"),
        Setting("mqtt.fleet", .string, environment: "OUTPOST_FLEET"),
        Setting("mqtt.user", .string, environment: "OUTPOST_MQTT_USER"),
        Setting("mqtt.password_file", .string, environment: "OUTPOST_MQTT_PASSWORD_FILE"),
        Setting("mqtt.ca", .string),
        Setting("mqtt.cert", .string),
        Setting("mqtt.key", .string),
        Setting("mqtt.topic_root", .string, .fleet),
    ]

    private static let byKey: [String: Setting] = Dictionary(uniqueKeysWithValues: all.map { ($0.key, $0) })

    public static func named(_ key: String) -> Setting? { byKey[key] }

    /// Section → field → setting, for those `source` may set.
    public static func schema(for source: Setting.Sources) -> [String: [String: Setting]] {
        var out: [String: [String: Setting]] = [:]
        for s in all where s.sources.contains(source) {
            out[s.section ?? "", default: [:]][s.field] = s
        }
        return out
    }

    /// Checks a JSON document of settings (`{"cache": {"ttl_s": 60}, "state_dir": "…"}`) against
    /// what `source` may set; returns the checked values by key, in key order. `extraSections`
    /// are sections the caller reads itself (left out of the result, not refused).
    public static func read(_ root: [String: JSONValue], from source: Setting.Sources,
                            extraSections: Set<String> = []) throws(SettingError) -> [(Setting, JSONValue)] {
        let schema = schema(for: source)
        var out: [(Setting, JSONValue)] = []
        for key in root.keys.sorted() {
            let value = root[key]!
            if extraSections.contains(key) { continue }
            if let top = schema[""]?[key] {
                out.append((top, try top.check(value)))
                continue
            }
            guard let fields = schema[key] else {
                throw SettingError(key: key, message: "unknown key \"\(key)\"", isUnknownKey: true)
            }
            guard case .object(let section) = value else {
                throw SettingError(key: key, message: "\"\(key)\" must be an object")
            }
            for field in section.keys.sorted() {
                guard let setting = fields[field] else {
                    throw SettingError(key: "\(key).\(field)", message: "unknown key \"\(key).\(field)\"", isUnknownKey: true)
                }
                out.append((setting, try setting.check(section[field]!)))
            }
        }
        return out
    }
}
