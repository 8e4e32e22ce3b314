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
    /// Installs a new PeerSync where the agent uses it (status, invalidation publishing).
    private let install: @Sendable (PeerSync) -> Void
    private let logger: Logger
    private let roots: AsyncStream<String>
    private let rootsContinuation: AsyncStream<String>.Continuation

    init(peer: PeerSync, logger: Logger, make: @escaping @Sendable (String) throws -> PeerSync,
         install: @escaping @Sendable (PeerSync) -> Void) {
        first = peer
        self.make = make
        self.install = install
        self.logger = logger
        (roots, rootsContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Moves to `root` (the newest request wins); returns at once.
    func requestTopicRoot(_ root: String) {
        rootsContinuation.yield(root)
    }

    func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            var peer = first
            var changes = roots.makeAsyncIterator()
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
                install(next)
                peer = next
            }
        }
    }
}
