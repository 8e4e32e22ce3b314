import AnswerCache
import OutpostCore
import PeerSync
import Synchronization

/// The agent's side of its MQTT link, made before the services that use it: the durable outbox
/// of invalidations (in the cache file) and the PeerSync in use, which `PeerSyncService`
/// installs when it joins and again when a fleet config moves the topic root. Empty (no outbox,
/// no link) when the agent runs without MQTT. The last fleet config outcome is kept here too, so
/// that a link installed later publishes it in its status.
final class FleetLink: Sendable {
    let outbox: InvalidationOutbox?
    private let current = Mutex<PeerSync?>(nil)
    private let configStatus = Mutex<JSONValue?>(nil)

    init(outbox: InvalidationOutbox?) {
        self.outbox = outbox
    }

    /// A link with nothing behind it (`--mqtt` not given).
    static let none = FleetLink(outbox: nil)

    /// From now on `peer` carries invalidations, status and statistics.
    func install(_ peer: PeerSync) {
        if let status = configStatus.withLock({ $0 }) { peer.setConfigStatus(status) }
        current.withLock { $0 = peer }
    }

    var peer: PeerSync? { current.withLock { $0 } }

    /// `connected`, `connecting`, `disconnected`, or `disabled` without MQTT.
    var brokerState: String { peer?.brokerState ?? "disabled" }

    /// Publishes what the outbox holds now, if connected (else after the reconnect).
    func publishPending() { peer?.publishPending() }

    /// Keeps `status` for links installed later and republishes the retained status with it.
    func reportConfig(_ status: JSONValue) async {
        configStatus.withLock { $0 = status }
        await peer?.reportConfig(status)
    }
}
