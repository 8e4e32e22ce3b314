import NIOCore
import Synchronization

/// The API socket's open connections, shared by every event loop: admits or refuses each new
/// connection (closing the idle one it replaces, see `StateMachine`), follows which are busy, and
/// tells a request's work when its client has gone (`onDeparture`), so the generation it started
/// can be cancelled instead of running on for nobody.
final class ConnectionRegistry: Sendable {
    typealias ID = ObjectIdentifier

    /// What an accepted connection may do.
    enum Admission: Sendable, Equatable {
        case normal
        /// Health and admin requests only (the cap is reached and every connection is busy).
        case reserved
        /// Answered 503 and closed.
        case refused
    }

    /// A registered departure hook, to remove once the request's work is done.
    struct Departure: Sendable {
        fileprivate let connection: ID
        fileprivate let token: Int
    }

    private struct State {
        var machine: StateMachine<ID>
        var channels: [ID: any Channel] = [:]
        var departures: [ID: [Int: @Sendable () -> Void]] = [:]
        var nextToken = 0
    }

    private let state: Mutex<State>

    init(limits: StateMachine<ID>.Limits) {
        state = Mutex(State(machine: StateMachine(limits: limits)))
    }

    static func id(_ channel: any Channel) -> ID { ObjectIdentifier(channel) }

    /// Called as a connection is accepted, before anything is read from it.
    func admit(_ channel: any Channel) -> Admission {
        let id = Self.id(channel)
        let (admission, victim) = state.withLock { s -> (Admission, (any Channel)?) in
            switch s.machine.open(id) {
            case .normal(let evicting):
                s.channels[id] = channel
                return (.normal, evicting.flatMap { s.channels[$0] })
            case .reserved(let evicting):
                s.channels[id] = channel
                return (.reserved, evicting.flatMap { s.channels[$0] })
            case .refused:
                return (.refused, nil)
            }
        }
        // Outside the lock: closing runs the victim's handlers on its own event loop.
        victim?.close(promise: nil)
        return admission
    }

    func requestStarted(_ id: ID) {
        state.withLock { $0.machine.requestStarted(id) }
    }

    func responseFinished(_ id: ID) {
        state.withLock { $0.machine.responseFinished(id) }
    }

    /// The connection closed: forgets it and runs its departure hooks.
    func closed(_ id: ID) {
        let hooks = state.withLock { s -> [@Sendable () -> Void] in
            s.machine.closed(id)
            s.channels[id] = nil
            return s.departures.removeValue(forKey: id).map { Array($0.values) } ?? []
        }
        for hook in hooks { hook() }
    }

    /// Runs `hook` when `channel` closes (at once if it already has). Returns the registration to
    /// pass to `remove` when the work it would cancel is done.
    func onDeparture(of channel: any Channel, _ hook: @escaping @Sendable () -> Void) -> Departure? {
        let id = Self.id(channel)
        let token = state.withLock { s -> Int? in
            guard s.channels[id] != nil else { return nil }
            s.nextToken += 1
            s.departures[id, default: [:]][s.nextToken] = hook
            return s.nextToken
        }
        guard let token else {
            hook()
            return nil
        }
        return Departure(connection: id, token: token)
    }

    func remove(_ departure: Departure?) {
        guard let departure else { return }
        state.withLock { s in
            s.departures[departure.connection]?[departure.token] = nil
            if s.departures[departure.connection]?.isEmpty == true { s.departures[departure.connection] = nil }
        }
    }

    /// Prometheus text for the connection counts and counters.
    func metricsText() -> String {
        let (normal, reserved, evicted, refused) = state.withLock {
            ($0.machine.normalCount, $0.machine.reservedCount, $0.machine.evictions, $0.machine.refusals)
        }
        return """
            # HELP outpost_localapi_connections Open connections on the API socket (reserved: beyond the cap, health and admin only).
            # TYPE outpost_localapi_connections gauge
            outpost_localapi_connections{kind="normal"} \(normal)
            outpost_localapi_connections{kind="reserved"} \(reserved)
            # HELP outpost_localapi_connections_evicted_total Idle connections closed to make room for a new one at the cap.
            # TYPE outpost_localapi_connections_evicted_total counter
            outpost_localapi_connections_evicted_total \(evicted)
            # HELP outpost_localapi_connections_refused_total Connections refused with 503: the cap and the reserve were full of busy connections.
            # TYPE outpost_localapi_connections_refused_total counter
            outpost_localapi_connections_refused_total \(refused)

            """
    }
}
