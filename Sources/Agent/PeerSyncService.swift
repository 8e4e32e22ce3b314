import AnswerCache
import Logging
import OutpostCore
import PeerSync
import ServiceLifecycle

/// Runs PeerSync (MQTT request topics, invalidation sync, config topics, status) in the agent's
/// service group. It is listed after the local API, so on shutdown it stops first: no new MQTT
/// requests, the offline status published, a clean DISCONNECT (the broker keeps the session for
/// our return).
///
/// A fleet config that moves the topic root (`mqtt.topic_root`) is taken up live: a PeerSync for
/// the new root is made, the old one unsubscribes everything from the broker session (which the
/// new one, with the same client id, inherits), publishes its offline status and disconnects,
/// and the new one connects and subscribes under the new root.
final class PeerSyncService: Service, Sendable {
    private let first: PeerSync
    /// Makes a PeerSync for another topic root (same broker, fleet, gateway, handlers).
    private let make: @Sendable (String) throws -> PeerSync
    /// Where the agent uses the PeerSync in service (status, invalidation publishing).
    private let link: FleetLink
    private let logger: Logger
    /// Topic-root moves asked by fleet configs.
    private let roots: TopicRootRequests

    init(peer: PeerSync, link: FleetLink, roots: TopicRootRequests, logger: Logger,
         make: @escaping @Sendable (String) throws -> PeerSync) {
        first = peer
        self.make = make
        self.link = link
        self.roots = roots
        link.install(peer)
        self.logger = logger
    }

    func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            var peer = first
            var changes = roots.roots.makeAsyncIterator()
            while true {
                logger.info("joining the fleet", metadata: [
                    "broker": "\(peer.configuration.broker)", "fleet": "\(peer.topics.fleet)",
                    "gateway": "\(peer.topics.gateway)", "root": "\(peer.topics.root)",
                ])
                let current = peer
                let next: PeerSync? = await withTaskGroup(of: Void.self) { group in
                    group.addTask { [logger] in
                        do { try await current.run() } catch {
                            logger.error("the fleet link stopped", metadata: ["error": "\(error)"])
                        }
                    }
                    group.addTask { [logger] in
                        for await notice in current.notices { Self.log(notice, root: current.topics.root, logger: logger) }
                    }
                    defer { group.cancelAll() }
                    while let root = await changes.next() {
                        guard root != current.topics.root else { continue }
                        do {
                            let next = try make(root)
                            current.leaveTopicRoot()
                            return next
                        } catch {
                            logger.error("cannot move to the new topic root", metadata: ["root": "\(root)", "error": "\(error)"])
                        }
                    }
                    return nil
                }
                logger.info("left the fleet", metadata: ["root": "\(current.topics.root)", "statistics": "\(current.statistics())"])
                guard let next else { return }
                link.install(next)
                peer = next
            }
        }
    }

    /// One line per notice: constant message, the facts (with their counts) in metadata.
    static func log(_ notice: PeerSync.Notice, root: String, logger: Logger) {
        switch notice {
        case .connectionLost(let rc, let losses, let unacknowledged):
            logger.warning("broker connection lost", metadata: [
                "reason_code": "\(rc)", "losses": "\(losses)", "unacknowledged_publications": "\(unacknowledged)", "root": "\(root)",
            ])
        case .reconnected(let down, let failed, let sessionPresent, let connects):
            logger.info("broker reconnected", metadata: [
                "down_ms": "\(down)", "failed_attempts": "\(failed)", "session_present": "\(sessionPresent)",
                "connects": "\(connects)", "root": "\(root)",
            ])
        case .subscribed(let topics, let refused, let reconnect):
            let metadata: Logger.Metadata = ["topics": "\(topics)", "refused": "\(refused)", "root": "\(root)"]
            if refused > 0 {
                logger.error(reconnect ? "resubscribed with refusals" : "subscribed with refusals", metadata: metadata)
            } else {
                logger.info(reconnect ? "resubscribed" : "subscribed", metadata: metadata)
            }
        case .sessionLost(let losses):
            logger.warning("broker session lost", metadata: [
                "reason": "session_not_present", "losses": "\(losses)", "root": "\(root)",
            ])
        case .cacheDropped(let reason, let entries, let drops):
            var metadata: Logger.Metadata = ["reason": "\(reason.word)", "entries": "\(entries.map(String.init) ?? "unknown")",
                                             "drops": "\(drops)"]
            switch reason {
            case .sequenceGap(let origin), .watermarkAhead(let origin): metadata["origin"] = "\(origin)"
            case .sessionLost: break
            }
            logger.warning("answer cache dropped", metadata: metadata)
        case .replyTopicRefused(let why, let topic, let requestTopic, let suppressed):
            logger.warning("reply topic refused", metadata: [
                "reason": "\(why.rawValue)", "reply_topic": "\(topic)", "request_topic": "\(requestTopic)",
                "suppressed": "\(suppressed)",
            ])
        case .requestExpired(let when, let overdue, let suppressed):
            logger.info("MQTT request expired", metadata: [
                "stage": "\(when.rawValue)", "overdue_ms": "\(overdue)", "suppressed": "\(suppressed)",
            ])
        case .messageRefused(let why, let origin, let watermark, let refused, let suppressed):
            logger.warning(watermark ? "watermark refused" : "invalidation refused", metadata: [
                "reason": "\(why.rawValue)", "origin": "\(origin)", "refused": "\(refused)", "suppressed": "\(suppressed)",
            ])
        }
    }
}

/// The cache says how many entries a drop for want of proof costs (logged by PeerSync's notice):
/// those stored on disk (fills still queued are not counted).
extension AnswerCache: CountingInvalidationTarget {
    public func entryCount() -> Int? { stats().entries }
}
