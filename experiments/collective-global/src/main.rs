//! Does burn-collective 0.21's global (multi-machine) mode survive two all-reduces in a row?
//!
//!     collective-global orchestrator PORT
//!     collective-global node NODE_PORT ORCHESTRATOR_PORT VALUE     (twice, as two processes)
//!
//! Each node registers one peer on the Flex CPU device, then all-reduces (sum) a 4-element tensor
//! of VALUE twice, printing each result. With two nodes (values 1 and 2) both should print 3s
//! twice. Reading burn-collective-0.21.0/src/global/node/sync.rs suggests the second one never
//! returns: `sync` clears a copy of its list of synced peers, not the list.
//!
//! Result (2026-11-29, docs/benchmarks-history.md): the first all-reduce gives [3, 3, 3, 3] on both
//! nodes in 1.6 ms; the second never returns.
//!
//!     cargo build --release
//!     B=target/release/collective-global
//!     $B orchestrator 39100 &
//!     timeout 60 $B node 39101 39100 1 & timeout 60 $B node 39102 39100 2; wait

use std::time::Instant;

use burn_backend::TensorData;
use burn_collective::{all_reduce, finish_collective, register, CollectiveConfig, PeerId, ReduceOperation};
use burn_communication::Address;
use burn_flex::Flex;

type B = Flex;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("orchestrator") => {
            let port: u16 = args[1].parse().unwrap();
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(burn_collective::start_global_orchestrator(port));
        }
        Some("node") => {
            let (node_port, orchestrator_port): (u16, u16) =
                (args[1].parse().unwrap(), args[2].parse().unwrap());
            let value: f32 = args[3].parse().unwrap();
            let config = CollectiveConfig::default()
                .with_num_devices(1)
                .with_num_nodes(2)
                .with_global_address(
                    format!("ws://localhost:{orchestrator_port}").parse::<Address>().unwrap(),
                )
                .with_node_address(format!("ws://localhost:{node_port}").parse::<Address>().unwrap())
                .with_data_service_port(node_port);
            let peer = PeerId::from(0);
            let device = Default::default();
            register::<B>(peer, device, config).expect("register");
            println!("node {node_port}: registered");
            for round in 1..=2 {
                let started = Instant::now();
                let tensor = <B as burn_backend::ops::FloatTensorOps<B>>::float_from_data(
                    TensorData::new(vec![value; 4], [4]),
                    &Default::default(),
                );
                let sum = all_reduce::<B>(peer, tensor, ReduceOperation::Sum).expect("all-reduce");
                let sum = read(sum);
                println!("node {node_port}: all-reduce {round} = {sum:?} after {:?}", started.elapsed());
            }
            finish_collective::<B>(peer).expect("finish");
            println!("node {node_port}: finished");
        }
        _ => eprintln!("usage: collective-global orchestrator PORT | node NODE_PORT ORCHESTRATOR_PORT VALUE"),
    }
}

fn read(tensor: <B as burn_backend::BackendTypes>::FloatTensorPrimitive) -> Vec<f32> {
    let data = burn_backend::read_sync(<B as burn_backend::ops::FloatTensorOps<B>>::float_into_data(tensor));
    data.unwrap().to_vec::<f32>().unwrap()
}
