import FoundationEssentials
import OutpostCore

/// What the store keeps as the live configuration: the fleet settings and this gateway's override,
/// with the version each came from. `effective` is what the agent runs with.
public struct ConfigRecord: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Written before the switch; a record still pending at start-up was never health-checked.
        case pending
        case committed
    }

    public var versions: AppliedVersions
    public var fleet: FleetSettings
    public var gateway: FleetSettings
    public var state: State

    public init(versions: AppliedVersions = .init(), fleet: FleetSettings = .init(), gateway: FleetSettings = .init(),
                state: State = .committed) {
        self.versions = versions
        self.fleet = fleet
        self.gateway = gateway
        self.state = state
    }

    /// No fleet config applied yet: the agent runs on its own configuration.
    public static let empty = ConfigRecord()

    /// The fleet settings with this gateway's override laid over them field by field.
    public var effective: FleetSettings { fleet.merged(with: gateway) }

    /// This record with `config` in place of the part from the same source, pending.
    public func replacing(with config: VerifiedConfig) -> ConfigRecord {
        var next = self
        next.versions[config.source] = config.version
        if config.source == .fleet { next.fleet = config.settings } else { next.gateway = config.settings }
        next.state = .pending
        return next
    }

    public func encoded() -> Data {
        func part(_ s: FleetSettings) -> String { String(decoding: s.encoded(), as: UTF8.self) }
        return Data("""
        {"state":"\(state.rawValue)","fleet_version":\(versions.fleet),"gateway_version":\(versions.gateway),\
        "fleet":\(part(fleet)),"gateway":\(part(gateway))}\n
        """.utf8)
    }

    public static func decode(_ data: Data) throws(FleetConfigError) -> ConfigRecord {
        let value: JSONValue
        do { value = try JSONValue.parse(data) } catch { throw .malformed("stored record: \(error.message)") }
        guard case .object(let o) = value,
              case .string(let s)? = o["state"], let state = State(rawValue: s),
              case .number(let fv)? = o["fleet_version"], fv >= 0,
              case .number(let gv)? = o["gateway_version"], gv >= 0,
              let fleet = o["fleet"], let gateway = o["gateway"]
        else { throw .malformed("stored record lacks state, versions or settings") }
        return ConfigRecord(versions: AppliedVersions(fleet: UInt64(fv), gateway: UInt64(gv)),
                            fleet: try FleetSettings(json: fleet), gateway: try FleetSettings(json: gateway), state: state)
    }
}

/// Where the last config received has got to, as published on the status topic:
/// `{"version":N,"state":…,"error":…,"reason":…,"source":…,"at":…}`. While it is applied the state
/// moves through `validating`, `persisted`, `switching` and `health_check`; it ends `applied`,
/// `rejected` or `rolled_back` (`isFinal`).
/// `reason` is `FleetConfigError.reason` (a short stable word) when there is an error; `source` is
/// `fleet` or `gateway` when known (a config too broken to read has none).
public struct ConfigStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        case validating, persisted, switching, healthCheck = "health_check"
        case applied, rejected, rolledBack = "rolled_back"

        /// Whether the apply is over (an outcome, not a step).
        public var isFinal: Bool {
            switch self {
            case .applied, .rejected, .rolledBack: true
            case .validating, .persisted, .switching, .healthCheck: false
            }
        }
    }

    public var version: UInt64
    public var state: State
    public var error: String?
    public var reason: String?
    public var source: ConfigSource?
    /// Unix seconds.
    public var at: Int64

    public init(version: UInt64, state: State, error: String? = nil, reason: String? = nil, source: ConfigSource? = nil,
                at: Int64) {
        self.version = version
        self.state = state
        self.error = error
        self.reason = reason
        self.source = source
        self.at = at
    }

    /// A status for `error`, with its message and reason.
    public init(version: UInt64, state: State, failure: FleetConfigError, source: ConfigSource? = nil, at: Int64) {
        self.init(version: version, state: state, error: failure.message, reason: failure.reason, source: source, at: at)
    }

    /// The same object as a `JSONValue` (for the MQTT status, which is built from `JSONValue`s).
    public var json: JSONValue {
        .object([
            "version": .number(Double(version)), "state": .string(state.rawValue), "at": .number(Double(at)),
            "error": error.map { .string($0) } ?? .null, "reason": reason.map { .string($0) } ?? .null,
            "source": source.map { .string($0.rawValue) } ?? .null,
        ])
    }
}
