import AnswerCache
import Dispatch
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LocalAPI
import Logging
import OutpostCore
import PeerSync
import MQTTDoor
import ServiceLifecycle
import MQTT

/// The composition root: loads the model, opens the answer cache, serves the local API, and
/// runs them in one service group until SIGTERM/SIGINT, then drains.
public struct Agent: Sendable {
    public let configuration: AgentConfiguration
    let logger: Logger
    let renderMetrics: @Sendable () -> String

    public init(configuration: AgentConfiguration, logger: Logger, renderMetrics: @escaping @Sendable () -> String) {
        self.configuration = configuration
        self.logger = logger
        self.renderMetrics = renderMetrics
    }

    public struct StartError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts every part bottom-up (state directory, fleet config, model, cache, service, API,
    /// fleet link) and runs them in one service group until SIGTERM/SIGINT, then drains.
    public func run() async throws {
        let notifier = SystemdNotifier(environment: ProcessInfo.processInfo.environment)
        let stateLock = try lockStateDirectory()
        defer { withExtendedLifetime(stateLock) {} }

        let loadStart = Date()
        // The fleet config (if any) is applied before anything else loads; its health check may
        // already have loaded the model it names.
        let fleet = try await startFleetConfig()
        let c = fleet.target.configuration
        let runtime = try loadModel(c, fleet: fleet, since: loadStart)
        let cache = try openCache(c)
        let link = try openLink(c, cache: cache)
        let service = AgentService(configuration: c, runtime: runtime, cache: cache, link: link,
                                   metrics: AgentMetrics(render: renderMetrics), fleetConfig: fleet.applier, logger: logger)
        let api: LocalAPIServer
        do { api = try makeAPI(c, service: service, notifier: notifier, since: loadStart) } catch {
            cache.close()
            throw error
        }
        // From here fleet configs switch the running service (the start target served until now).
        let roots = c.mqtt == nil ? nil : TopicRootRequests()
        let live = LiveConfigTarget(base: fleet.target.base, service: service, membership: fleet.membership, roots: roots)
        let configService = FleetConfigService(applier: fleet.applier, target: live, service: service, logger: logger)
        let peerService: PeerSyncService?
        do { peerService = try joinFleet(c, fleet: fleet, service: service, cache: cache, link: link, roots: roots,
                                         configService: configService) } catch {
            cache.close()
            throw error
        }

        // Shutdown runs in reverse order: the API stops accepting and finishes its requests
        // first, then generation is closed, then the cache queue is written out.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: CacheService(cache: cache, logger: logger)),
            .init(service: DrainService(scheduler: service.scheduler, notifier: notifier)),
            .init(service: WatchdogService(notifier: notifier, service: service),
                  successTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: api),
        ]
        // Last, so they stop first: no new MQTT requests or configs while the rest drains.
        if let peerService {
            services.append(.init(service: configService))
            services.append(.init(service: peerService))
            // The status carries the live config from the start: what the committed config and
            // `--fleet-config` came to (a rolled-back one included).
            if let status = fleet.status { await service.reportConfig(status, restartRequired: []) }
        }
        // Invalidations of a `--fleet-config` applied at this start, now that the cache is open.
        if let pending = fleet.pendingInvalidation {
            await FleetConfigService.invalidate(pending, service: service, logger: logger)
        }
        var groupConfig = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfig.maximumGracefulShutdownDuration = .seconds(c.shutdownGraceSeconds)
        groupConfig.maximumCancellationDuration = .seconds(5)
        try await ServiceGroup(configuration: groupConfig).run()
        logger.info("agent stopped")
    }

    /// Creates the state directory and locks it: a second agent on it is refused whatever socket
    /// it was given, before anything in it is read or written.
    private func lockStateDirectory() throws -> StateDirectoryLock {
        do {
            try FileManager.default.createDirectory(atPath: configuration.stateDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o750])
        } catch {
            throw StartError(description: "cannot create the state directory \(configuration.stateDirectory): \(error)")
        }
        do { return try StateDirectoryLock(directory: configuration.stateDirectory) } catch {
            throw StartError(description: "\(error)")
        }
    }

    /// The model the fleet config's health check loaded, or `c.modelPath`.
    private func loadModel(_ c: AgentConfiguration, fleet: FleetStart, since loadStart: Date) throws -> ModelRuntime {
        let runtime: ModelRuntime
        do {
            runtime = try fleet.target.takeRuntime() ?? ModelRuntime(path: c.modelPath, threads: c.threads, contextLength: c.contextLength)
        } catch {
            throw StartError(description: "cannot load the model \(c.modelPath): \(error)")
        }
        logger.info("model loaded", metadata: [
            "model": "\(c.modelPath)", "fingerprint": "\(runtime.fingerprint.prefix(16))",
            "context": "\(runtime.contextLength)", "threads": "\(c.threads)",
            "seconds": "\(String(printf: "%.3f", Date().timeIntervalSince(loadStart)))",
        ])
        return runtime
    }

    private func openCache(_ c: AgentConfiguration) throws -> AnswerCache {
        do { return try AnswerCache(configuration: c.cache.configuration(path: c.cacheFile)) } catch {
            throw StartError(description: "cannot open the answer cache \(c.cacheFile): \(error)")
        }
    }

    /// The MQTT link's outbox (in the cache file) when the agent joins a fleet; empty otherwise.
    private func openLink(_ c: AgentConfiguration, cache: AnswerCache) throws -> FleetLink {
        guard c.mqtt != nil else { return .none }
        do { return FleetLink(outbox: try InvalidationOutbox(cache: cache)) } catch {
            cache.close()
            throw StartError(description: "cannot open the invalidation outbox: \(error)")
        }
    }

    /// The local API on its Unix socket; ready (systemd READY=1) once it listens.
    private func makeAPI(_ c: AgentConfiguration, service: AgentService, notifier: SystemdNotifier,
                         since loadStart: Date) throws -> LocalAPIServer {
        var apiConfig = LocalAPIServer.Configuration(socketPath: c.socketPath, socketGroup: c.socketGroup)
        apiConfig.idleTimeout = .seconds(c.idleTimeoutSeconds)
        apiConfig.maxConnections = c.maxConnections
        apiConfig.reservedConnections = c.reservedConnections
        apiConfig.defaults = c.defaults
        let logger = self.logger
        do {
            return try LocalAPIServer(configuration: apiConfig, service: service, logger: logger) {
                service.markReady()
                notifier.notify("READY=1\nSTATUS=answering on \(c.socketPath)")
                logger.info("agent ready", metadata: ["socket": "\(c.socketPath)", "kernel": "\(service.kernel)",
                                                      "seconds": "\(String(printf: "%.3f", Date().timeIntervalSince(loadStart)))"])
            }
        } catch {
            throw StartError(description: "\(error)")
        }
    }

    /// The MQTT link (requests, invalidation sync, configs, status) when `c.mqtt` is set.
    private func joinFleet(_ c: AgentConfiguration, fleet: FleetStart, service: AgentService, cache: AnswerCache,
                           link: FleetLink, roots: TopicRootRequests?, configService: FleetConfigService) throws -> PeerSyncService? {
        guard let m = c.mqtt, let outbox = link.outbox, let roots else { return nil }
        do {
            var pc = PeerSync.Configuration(broker: try BrokerURL(m.url), fleet: m.fleet, gatewayID: c.gatewayID)
            pc.topicRoot = m.topicRoot
            pc.onConfig = { configService.receive($0) }
            pc.maxConfigBytes = fleet.applier.verifier.maxEnvelopeBytes
            pc.username = m.user
            pc.passwordFile = m.passwordFile
            pc.caFile = m.caFile
            pc.certFile = m.certFile
            pc.keyFile = m.keyFile
            // The MQTT request door, on PeerSync's connection: PeerSync makes one for itself (and
            // for each PeerSync made after a topic-root move) and hands it the request messages.
            var door = MQTTRequestDoor.Configuration()
            door.samplingDefaults = c.defaults
            pc.requests = try MQTTRequestDoor.factory(door)
            do {
                pc.identity = try MemberIdentity.loadOrCreate(stateDirectory: c.stateDirectory, gateway: c.gatewayID, fleet: m.fleet)
            } catch {
                throw StartError(description: "member key: \(error)")
            }
            pc.membership = fleet.membership
            Self.logInvalidationAuth(pc, logger: logger)
            let peer = try PeerSync(configuration: pc, service: service, target: cache, log: outbox)
            let joined = pc
            let ps = PeerSyncService(peer: peer, link: link, roots: roots, logger: logger) { root in
                var moved = joined
                moved.topicRoot = root
                return try PeerSync(configuration: moved, service: service, target: cache, log: outbox)
            }
            return ps
        } catch let e as StartError {
            throw e
        } catch {
            throw StartError(description: "cannot join the fleet over MQTT: \(error)")
        }
    }
}

/// Keeps the answer cache open while the agent runs; on shutdown writes everything queued.
struct CacheService: Service {
    let cache: AnswerCache
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let cache = self.cache
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                cache.close()
                c.resume()
            }
        }
        logger.info("answer cache flushed and closed", metadata: ["fills": "\(cache.stats().fills)"])
    }
}

/// On shutdown (after the API has stopped): refuses new generations and stops any still running.
struct DrainService: Service {
    let scheduler: GenerationScheduler
    let notifier: SystemdNotifier

    func run() async throws {
        try? await gracefulShutdown()
        notifier.notify("STOPPING=1")
        scheduler.close(cancelRunning: true)
    }
}

/// Pings the systemd watchdog while the agent is healthy (model loaded, API serving).
struct WatchdogService: Service {
    let notifier: SystemdNotifier
    let service: AgentService

    func run() async throws {
        guard let interval = notifier.watchdogInterval else {
            try? await gracefulShutdown()
            return
        }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if service.isReady, await service.health().ready {
                notifier.notify("WATCHDOG=1")
            }
            try? await Task.sleep(for: interval)
        }
    }
}
