import CNetMPLinux
import NetMPSystem
import Testing

@Suite struct NUMATests {
    @Test func fakeTopology_parsed_andRejectsGaps() throws {
        let fake = try NUMATopology.parse("0-1:0,2-3:1").get()
        #expect(fake.nodeOfCPU == [0, 0, 1, 1] && fake.nodes == 2 && fake.isFake)
        #expect(fake.node(of: 3) == 1)
        for bad in ["0:0,2:1", "a-b:0", "0-1", "1-0:0", "0:-1", ""] {
            #expect(throws: NUMAError.self) { try NUMATopology.parse(bad).get() }
        }
    }

    /// Memory asked for on a node is on that node (move_pages says where a touched page lives).
    @Test func allocation_placedOnTheRequestedNode() throws {
        let topology = try NUMATopology.system().get()
        #expect(topology.nodeOfCPU.count >= 1 && !topology.isFake)
        for node in 0..<topology.nodes {
            let memory = topology.allocate(bytes: 1 << 20, node: node)
            memory.initializeMemory(as: UInt8.self, repeating: 1) // first touch makes the pages real
            let placed = netmp_node_of_address(memory.baseAddress)
            #expect(placed == Int32(node), "asked for node \(node), got \(placed)")
            topology.free(memory)
        }
    }

    /// A fake second node still yields usable memory (from the real node).
    @Test func fakeNode_allocatesFromTheRealOne() throws {
        let fake = try NUMATopology.parse("0:0,1:1").get()
        let memory = fake.allocate(bytes: 4096, node: 1)
        memory.initializeMemory(as: UInt8.self, repeating: 7)
        #expect(netmp_node_of_address(memory.baseAddress) == 0)
        fake.free(memory)
    }
}

/// Each protocol thread's memory is on its CPU's node: asked of the running cores.
@Suite struct CoreMemoryPlacementTests {
    @Test func everyCore_framesBufferOnItsNode() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        for placement in pair.a.memoryPlacement() {
            #expect(placement.actual == placement.expected, "core \(placement.core): on node \(placement.actual)")
        }
    }
}
