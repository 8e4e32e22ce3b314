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
    /// The settings the file sets, checked against the table (`Settings.all`), in key order.
    let values: [(Setting, JSONValue)]
    let path: String

    static func parse(_ data: Data, path: String) throws -> ConfigFile {
        let value: JSONValue
        do { value = try JSONValue.parse(data) } catch {
            throw AgentConfiguration.Error("config file \(path): \(error.message)")
        }
        guard case .object(let root) = value else { throw AgentConfiguration.Error("config file \(path): must be a JSON object") }
        do { return ConfigFile(values: try Settings.read(root, from: .file), path: path) } catch {
            throw AgentConfiguration.Error("config file \(path): \(error.message)")
        }
    }

    func apply(to c: inout AgentConfiguration, socket: inout String?) throws {
        for (setting, value) in values {
            if setting.key == "socket.path", case .string(let s) = value {
                socket = s
            } else {
                c.set(setting, value)
            }
        }
        if let m = c.mqtt, m.url.isEmpty || m.fleet.isEmpty {
            throw AgentConfiguration.Error("config file \(path): mqtt: url and fleet are both required to join a fleet")
        }
        do { try c.defaults.validate() } catch {
            throw AgentConfiguration.Error("config file \(path): generation: \(error.message)")
        }
        if c.reservedConnections < 0 || c.maxQueuedRequests < 0 {
            throw AgentConfiguration.Error("config file \(path): limits must be 0 or more")
        }
    }
}
