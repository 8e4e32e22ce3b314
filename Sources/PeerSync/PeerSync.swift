import Dispatch
import FoundationEssentials
import OutpostCore
import Synchronization
import MQTT

/// A gateway's presence in its fleet over MQTT (DESIGN.md, "MQTT"):
/// - subscribes to requests on `…/req` (shared subscription) and `…/gw/<id>/req` and hands them
///   to the request handler its configuration makes (`MQTTDoor`'s door, answering through the
///   `AnswerService`), relaying its notices and reporting its counters with its own;
/// - publishes local invalidations from a durable outbox (`announce`), and applies peers'
///   invalidations through the cache's durable path before libmosquitto acknowledges them;
/// - on a lost session, invalidates everything locally, since it cannot vouch for what it missed;
/// - keeps a retained status (online, model, kernel, config version, cache counts, uptime), with
///   a Last Will that marks the gateway offline;
/// - reports what an operator should see (connection lost and back, session lost, cache dropped,
///   refused reply topics, expired requests) as `notices`, for the caller to log.
///
/// `run()` runs until cancelled, then publishes the offline status and disconnects cleanly.
public final class PeerSync: Sendable {
    public let configuration: Configuration
    public let topics: FleetTopics
    let core: Core
    let connection: MQTTConnection
    /// What an operator should see, one log line each (`Notice`). Read by one consumer; the newest
    /// 256 are kept when nobody reads. Finishes when `run()` returns.
    public let notices: AsyncStream<Notice>

    public init(configuration: Configuration, service: any AnswerService, target: any InvalidationTarget,
                log: any InvalidationLog) throws {
        let topics = try FleetTopics(fleet: configuration.fleet, gateway: configuration.gatewayID, root: configuration.topicRoot)
        self.configuration = configuration
        self.topics = topics
        let (notices, noticeContinuation) = AsyncStream<Notice>.makeStream(bufferingPolicy: .bufferingNewest(256))
        self.notices = notices
        let core = Core(configuration: configuration, topics: topics, service: service, target: target, log: log,
                        epoch: try log.epoch(), notices: noticeContinuation)
        self.core = core
        if let makeHandler = configuration.requests {
            core.attach(requests: makeHandler(core.requestHost, service))
        }
        var options = MQTTConnection.Options(url: configuration.broker, clientID: "outpost-\(configuration.fleet)-\(configuration.gatewayID)")
        options.protocolVersion = configuration.protocolVersion
        options.keepaliveSeconds = configuration.keepaliveSeconds
        options.sessionExpirySeconds = configuration.sessionExpirySeconds
        options.username = configuration.username
        options.password = try configuration.password()
        options.caFile = configuration.caFile
        options.certFile = configuration.certFile
        options.keyFile = configuration.keyFile
        options.will = MQTTMessage(topic: topics.status, payload: Core.offlineStatus(gateway: configuration.gatewayID),
                                   qos: 1, retain: true)
        options.receiveMaximum = configuration.receiveMaximum
        options.sendMaximum = configuration.sendMaximum
        options.maxQueued = configuration.maxQueued
        options.initialBackoffMillis = configuration.initialBackoffMillis
        options.maximumBackoffMillis = configuration.maximumBackoffMillis
        options.hadSession = try log.hadSession()
        connection = try MQTTConnection(options: options, observer: { core.observe($0) })
        core.attach(connection)
    }

    /// Connects and serves until the task is cancelled; then refuses new requests, lets those in
    /// progress finish, publishes the offline status and disconnects (the will is not sent).
    /// Runs once: a second call throws.
    public func run() async throws {
        guard core.state.withLock({ s -> Bool in
            defer { s.started = true }
            return !s.started
        }) else {
            throw PeerSyncError.invalidConfiguration("PeerSync.run() was called twice; make a new PeerSync instead")
        }
        connection.start()
        let events = connection.events
        await withDiscardingTaskGroup { group in
            group.addTask { [core] in
                await core.statusLoop()
            }
            for await event in events {
                if Task.isCancelled { break }
                core.handle(event, in: &group)
            }
            group.cancelAll()
        }
        core.shutDown()
        connection.stop()
        core.notices.finish()
    }

    /// Makes a local invalidation durable in the outbox and publishes it (now if connected, else
    /// after the reconnect). Call it after the cache has applied the invalidation.
    public func announce(_ tombstone: Tombstone) throws {
        try core.log.append(tombstone)
        core.pumpOutbox()
    }

    /// Publishes what the outbox holds now, if connected (for callers that append to the
    /// `InvalidationLog` themselves, e.g. in the same blocking section as the invalidation).
    public func publishPending() {
        core.pumpOutbox()
    }

    /// Leaves this topic root: unsubscribes everything from the broker session, so that a PeerSync
    /// made for another root with the same gateway id (and so the same session) does not keep
    /// receiving this root's messages. Then cancel `run()`.
    public func leaveTopicRoot() {
        core.unsubscribe()
    }

    /// Sets the status topic's `config` object without publishing it (it goes out on connect).
    public func setConfigStatus(_ status: JSONValue) {
        core.state.withLock { $0.configStatus = status }
    }

    /// Sets the status topic's `config` object (the outcome of the last fleet config) and
    /// republishes the retained status now if connected (else it goes out on the next connect).
    public func reportConfig(_ status: JSONValue) async {
        core.state.withLock { $0.configStatus = status }
        await core.publishStatus()
    }

    /// Whether the broker acknowledged every subscription of the current connection (requests
    /// published before that may find nobody subscribed).
    public var isSubscribed: Bool {
        core.state.withLock { $0.link.connectedSince != nil && $0.link.pendingSubscriptions.isEmpty && $0.link.granted > 0 }
    }

    /// `connected`, `connecting` or `disconnected`, for `/health`.
    public var brokerState: String { core.brokerState() }

    /// Counters by name (`requests`, `replies`, `requests_refused`, `reply_topics_refused_fleet_topic`,
    /// `invalidations_applied`, …; see `Counter.name`), the totals of the refusal and expiry
    /// families (`reply_topics_refused`, `requests_expired`), and two gauges (`events_dropped`,
    /// `publications_unacknowledged`). Counters still at zero are left out.
    public func statistics() -> [String: Int] {
        var out: [String: Int] = [:]
        for (counter, n) in core.counters.withLock({ $0 }) {
            out[counter.name, default: 0] += n
            if let total = counter.total { out[total, default: 0] += n }
        }
        // The request handler's counters, under the same names (`publish_errors` adds up).
        for (name, n) in core.requestHandler?.statistics() ?? [:] { out[name, default: 0] += n }
        out["events_dropped"] = connection.client.droppedEvents
        out["publications_unacknowledged"] = connection.outstanding
        return out
    }

    /// One counter (the request ones as the request handler counted them).
    public func count(of counter: Counter) -> Int {
        core.counters.withLock { $0[counter] ?? 0 } + (core.requestHandler?.statistics()[counter.name] ?? 0)
    }
}
