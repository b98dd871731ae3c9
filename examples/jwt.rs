//! `cargo run --example jwt -- help`: sign claims given as JSON, verify a token with the options
//! a service would use, or mint an access/refresh pair (`mint-pair --sub alice`) against an
//! in-memory token store. The logic is `latchkey_examples::jwt_cli::run`.

fn main() {
    // `args()` would panic on an argument that is not UTF-8; such a token is invalid anyway.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let code = latchkey_examples::jwt_cli::run(
        &args,
        &mut std::io::stdin(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    std::process::exit(code);
}
