/// The compute-kernel path this machine uses. Until the quantized kernels exist every path is the
/// portable scalar one.
enum KernelInfo {
    static var name: String { "scalar" }
}
