import SpoolProtocol

extension SpoolConsumer {
    /// Joins consumer group `group` and reads the partitions of `topics` that the group
    /// gives this consumer; as members join and leave, partitions move between them
    /// (see ``GroupMembership``). A partition taken over resumes from the group's
    /// committed offset, or from `fallback` when it has none. Commits (`commit()`) are
    /// made as a member of the current generation.
    ///
    /// Delivery is at least once: records of a partition that moves after they were
    /// read but before they were committed are read again by its next owner.
    ///
    /// ```swift
    /// let consumer = SpoolConsumer(connection: connection)
    /// try await consumer.subscribe(topics: ["events"], group: "billing", from: .beginning)
    /// while running { for record in try await consumer.poll() { handle(record) }; try? await consumer.commit() }
    /// await consumer.unsubscribe()   // hands the partitions to the other members at once
    /// ```
    @discardableResult
    public func subscribe(
        topics: [String], group: String, from fallback: StartPosition = .end, config: GroupMembership.Config = GroupMembership.Config(),
        onRebalance: (@Sendable (GroupMembership.RebalanceEvent) async -> Void)? = nil
    ) async throws -> GroupMembership {
        let admin = self.admin
        let membership = GroupMembership(router: router, group: group, topics: topics, config: config) { [weak self] event in
            guard let self else { return }
            switch event {
            case .revoked(let partitions):
                self.dropPartitions(partitions)
            case .assigned(let partitions, _):
                var committed: [String: [Int32: Int64]] = [:]
                if !partitions.isEmpty {
                    for o in try await admin.committedOffsets(group: group, topics: partitions.keys.sorted()) {
                        committed[o.topic, default: [:]][o.partition] = o.offset
                    }
                }
                for (topic, list) in partitions {
                    for partition in list {
                        let start = committed[topic]?[partition].map { StartPosition.offset($0) } ?? fallback
                        try await self.seek(topic: topic, partition: partition, to: start)
                    }
                }
            }
            await onRebalance?(event)
        }
        let previous = membershipBox.withLockedValue { box -> GroupMembership? in
            defer { box = membership }
            return box
        }
        guard previous == nil else {
            membershipBox.withLockedValue { $0 = previous }
            throw SpoolStatusError(.failedPrecondition, "this consumer already subscribed to group \(previous!.group)")
        }
        do {
            try await membership.start()
        } catch {
            membershipBox.withLockedValue { $0 = nil }
            await membership.leave()
            throw error
        }
        return membership
    }

    /// Leaves the group (its partitions go to the other members at once) and drops the
    /// group's partitions from this consumer.
    public func unsubscribe() async {
        let membership = membershipBox.withLockedValue { box -> GroupMembership? in
            defer { box = nil }
            return box
        }
        await membership?.leave()
    }
}
