import Dispatch

/// Keeps signal sources alive for the life of the process.
enum SignalSources {
    nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []
    static func keep(_ source: DispatchSourceSignal) { sources.append(source) }
}
