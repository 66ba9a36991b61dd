//! `trainer`: train, evaluate, predict with, import, convert, describe and benchmark AlexNet.

fn main() {
    trainer::cli::main()
}
