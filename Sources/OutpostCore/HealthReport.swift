/// `/health`: whether the agent can answer and what it runs.
public struct HealthReport: Sendable, Codable, Equatable {
    public var ready: Bool
    public var modelLoaded: Bool
    public var modelFingerprint: String
    public var kernel: String
    public var configVersion: Int
    public var broker: String
    public var gateway: String
    public var uptimeSeconds: Double

    enum CodingKeys: String, CodingKey {
        case ready
        case modelLoaded = "model_loaded"
        case modelFingerprint = "model_fingerprint"
        case kernel
        case configVersion = "config_version"
        case broker, gateway
        case uptimeSeconds = "uptime_s"
    }

    public init(ready: Bool, modelLoaded: Bool, modelFingerprint: String, kernel: String, configVersion: Int,
                broker: String, gateway: String, uptimeSeconds: Double) {
        self.ready = ready
        self.modelLoaded = modelLoaded
        self.modelFingerprint = modelFingerprint
        self.kernel = kernel
        self.configVersion = configVersion
        self.broker = broker
        self.gateway = gateway
        self.uptimeSeconds = uptimeSeconds
    }
}
