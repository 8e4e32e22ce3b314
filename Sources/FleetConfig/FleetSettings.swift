import FoundationEssentials
import OutpostCore

/// The settings a fleet config may carry, validated: every key known, every value of its type.
/// Keys mirror the agent's config file (`Sources/Agent/ConfigFile.swift`) where they overlap:
///
/// ```json
/// {"model": {"path": "/var/lib/outpost/models/m.gguf"},
///  "generation": {"temperature": 0, "top_k": 40, "top_p": 0.95, "max_tokens": 256, "max_tokens_limit": 2048,
///                 "repeat_penalty": 1.1},
///  "cache": {"memory_budget_mb": 64, "disk_budget_mb": 1024, "ttl_s": 86400, "stale_while_revalidate_s": 3600,
///            "flush_interval_ms": 100, "batch_size": 512, "queue_capacity": 65536},
///  "mqtt": {"topic_root": "outpost/site-a"},
///  "invalidate": {"tags": ["kb-v7"], "namespaces": ["faq"]},
///  "members": {"gw-1": "<base64 of gw-1's Ed25519 public key>", "gw-2": "…"}}
/// ```
///
/// `members` is the one section whose field names are not fixed: gateway ids, each with the
/// member key (`outpost member key`) whose signatures on invalidations peers accept as that
/// gateway's.
public struct FleetSettings: Sendable, Equatable {
    /// The fleet's actions, beside the settings a fleet config may set (`Settings.all` with the
    /// `.fleet` source): what to invalidate once applied, and the member keys.
    static let actions: Set<String> = ["invalidate", "members"]

    /// Section → field → value; only keys from the settings table and the actions.
    public private(set) var sections: [String: [String: JSONValue]]

    public init() { sections = [:] }

    /// Validates a decoded payload.
    public init(json value: JSONValue) throws(FleetConfigError) {
        guard case .object(let root) = value else { throw .invalidPayload("must be a JSON object") }
        var sections: [String: [String: JSONValue]] = [:]
        do {
            for (setting, v) in try Settings.read(root, from: .fleet, extraSections: Self.actions) {
                sections[setting.section ?? "", default: [:]][setting.field] = v
            }
        } catch {
            throw error.isUnknownKey ? .unknownKey(error.key) : .invalidPayload(error.message)
        }
        if let members = root["members"] { sections["members"] = try Self.checkMembers(members) }
        if let invalidate = root["invalidate"] { sections["invalidate"] = try Self.checkInvalidate(invalidate) }
        if case .number(let t)? = sections["generation"]?["temperature"], t < 0 || t > 2 {
            throw .invalidPayload("generation.temperature must be between 0 and 2")
        }
        if case .number(let p)? = sections["generation"]?["top_p"], p <= 0 || p > 1 {
            throw .invalidPayload("generation.top_p must be above 0 and at most 1")
        }
        if case .number(let r)? = sections["generation"]?["repeat_penalty"], r <= 0 {
            throw .invalidPayload("generation.repeat_penalty must be positive")
        }
        if case .number(let m)? = sections["generation"]?["max_tokens"],
           case .number(let l)? = sections["generation"]?["max_tokens_limit"], m > l {
            throw .invalidPayload("generation.max_tokens must not exceed generation.max_tokens_limit")
        }
        self.sections = sections
    }

    /// `invalidate`: `tags` and `namespaces`, lists of non-empty strings.
    private static func checkInvalidate(_ v: JSONValue) throws(FleetConfigError) -> [String: JSONValue] {
        guard case .object(let o) = v else { throw .invalidPayload("\"invalidate\" must be an object") }
        for field in o.keys.sorted() {
            guard field == "tags" || field == "namespaces" else { throw .unknownKey("invalidate.\(field)") }
            guard case .array(let a) = o[field]!, a.allSatisfy({ if case .string(let s) = $0 { !s.isEmpty } else { false } }) else {
                throw .invalidPayload("invalidate.\(field) must be a list of non-empty strings")
            }
        }
        return o
    }

    /// Parses and validates payload bytes (JSON).
    public init(payload: [UInt8]) throws(FleetConfigError) {
        let value: JSONValue
        do { value = try JSONValue.parse(Data(payload)) } catch { throw .invalidPayload(error.message) }
        try self.init(json: value)
    }

    /// `members`: gateway id → base64 of a 32-byte Ed25519 public key.
    private static func checkMembers(_ v: JSONValue) throws(FleetConfigError) -> [String: JSONValue] {
        guard case .object(let o) = v else { throw .invalidPayload("\"members\" must be an object") }
        guard o.count <= 10_000 else { throw .invalidPayload("members: at most 10000 gateways") }
        for id in o.keys.sorted() {
            guard !id.isEmpty, id.utf8.count <= 128,
                  !id.contains(where: { "/+#$".contains($0) || $0.isWhitespace || $0.isNewline })
            else { throw .invalidPayload("members: \"\(id.prefix(40))\" is not a gateway id (1 to 128 bytes, no /, +, #, $ or spaces)") }
            guard case .string(let b64)? = o[id], let raw = Data(base64Encoded: b64),
                  (try? Ed25519.PublicKey(rawRepresentation: raw)) != nil
            else { throw .invalidPayload("members.\(id) must be an Ed25519 public key in base64 (outpost member key)") }
        }
        return o
    }

    /// The member keys the config lists (`members`), by gateway id.
    public var members: [String: Ed25519.PublicKey] {
        var out: [String: Ed25519.PublicKey] = [:]
        for (id, v) in sections["members"] ?? [:] {
            if case .string(let b64) = v, let raw = Data(base64Encoded: b64), let key = try? Ed25519.PublicKey(rawRepresentation: raw) {
                out[id] = key
            }
        }
        return out
    }

    /// `override` laid over `self` field by field: a field the override sets wins; every other field
    /// keeps the fleet value.
    public func merged(with override: FleetSettings) -> FleetSettings {
        var result = self
        for (section, fields) in override.sections {
            result.sections[section, default: [:]].merge(fields) { _, new in new }
        }
        return result
    }

    public subscript(section: String, field: String) -> JSONValue? { sections[section]?[field] }

    public var modelPath: String? {
        if case .string(let s)? = self["model", "path"] { s } else { nil }
    }

    /// Tags and namespaces to invalidate once this config is applied.
    public var invalidation: (tags: [String], namespaces: [String]) {
        func list(_ f: String) -> [String] {
            guard case .array(let a)? = self["invalidate", f] else { return [] }
            return a.compactMap { if case .string(let s) = $0 { s } else { nil } }
        }
        return (list("tags"), list("namespaces"))
    }

    /// The settings as JSON (keys sorted), which `init(payload:)` reads back.
    public func encoded() -> Data {
        Data(JSONValue.object(sections.mapValues { JSONValue.object($0) }).encoded())
    }
}
