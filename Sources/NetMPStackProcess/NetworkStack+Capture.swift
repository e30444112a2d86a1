extension NetworkStack {
    /// Starts capturing every frame the cores send and read into `fd` (a file or a pipe,
    /// which the capture owns from now on). The cores are writing into it when this
    /// returns. Throws when the file's header cannot be written or the writer not started.
    public func startCapture(into fd: Int32, options: CaptureSession.Options) throws(StackProcessError) -> CaptureSession {
        let session = try CaptureSession(fd: fd, cores: cores, options: options)
        try session.start()
        let completion = Completion(count: cores)
        for core in 0..<cores { send(.capture(session.rings[core], completion), to: core) }
        completion.wait()
        return session
    }

    /// Ends `session`: the cores stop writing into it, then its writer takes what the
    /// rings hold and closes the file.
    public func stopCapture(_ session: CaptureSession) -> CaptureSession.Summary {
        tellEveryCore { .capture(nil, $0) }
        return session.finish()
    }
}
