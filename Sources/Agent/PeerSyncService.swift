import AnswerCache
import Logging
import OutpostCore
import PeerSync
import ServiceLifecycle

/// Runs PeerSync (MQTT request topics, invalidation sync, status) in the agent's service group.
/// It is listed after the local API, so on shutdown it stops first: no new MQTT requests, the
/// offline status published, a clean DISCONNECT (the broker keeps the session for our return).
struct PeerSyncService: Service {
    let peer: PeerSync
    let logger: Logger

    func run() async throws {
        logger.info("joining the fleet", metadata: [
            "broker": "\(peer.configuration.broker)", "fleet": "\(peer.topics.fleet)", "gateway": "\(peer.topics.gateway)",
        ])
        try await cancelWhenGracefulShutdown {
            try await peer.run()
        }
        logger.info("left the fleet", metadata: ["statistics": "\(peer.statistics())"])
    }
}
