//! `bench`: the figures of `BENCHMARKS.md` (`make bench` runs `bench report`).

use std::path::PathBuf;

use bench::measure;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bench", version, about = "Benchmarks of stytch-unit-bridge")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every measurement; writes the report.
    Report {
        #[command(flatten)]
        lambda: Lambda,
        /// Requests per function before reading its peak RSS.
        #[arg(long, env = "BENCH_RSS_REQUESTS", default_value_t = 1000)]
        rss_requests: usize,
        /// Requests per measured route for the overhead figures.
        #[arg(long, env = "BENCH_OVERHEAD_REQUESTS", default_value_t = 2000)]
        overhead_requests: usize,
        /// Seconds of the throughput run.
        #[arg(long, env = "BENCH_SECONDS", default_value_t = 5)]
        seconds: u64,
        /// A `perf report` summary of a throughput run to include.
        #[arg(long, env = "BENCH_PROFILE")]
        profile: Option<PathBuf>,
        /// Where to write the report.
        #[arg(long, env = "BENCH_OUT", default_value = "BENCHMARKS.md")]
        out: PathBuf,
    },
    /// Only the cold starts: `<function> <ms to first poll> <ms to first response>`, medians.
    Cold {
        #[command(flatten)]
        lambda: Lambda,
    },
    /// Only the one-core throughput run (what `make bench` profiles with perf).
    Throughput {
        /// Seconds of the run.
        #[arg(long, env = "BENCH_SECONDS", default_value_t = 5)]
        seconds: u64,
    },
}

/// Where the release bootstraps and moto are.
#[derive(Args)]
struct Lambda {
    /// moto's URL (DynamoDB and Secrets Manager); `make bench` starts it.
    #[arg(long, env = "MOTO_URL")]
    moto_url: String,
    /// Where `make package` put the release builds.
    #[arg(long, env = "BOOTSTRAP_DIR", default_value = "target/lambda")]
    bootstrap_dir: PathBuf,
    /// Cold starts per function.
    #[arg(long, env = "BENCH_COLD_RUNS", default_value_t = 20)]
    cold_runs: usize,
}

impl Lambda {
    fn options(self) -> measure::Options {
        measure::Options {
            moto_url: self.moto_url,
            bootstrap_dir: self.bootstrap_dir,
            cold_runs: self.cold_runs,
            rss_requests: 0,
            overhead_requests: 0,
            throughput_seconds: 0,
            profile: None,
        }
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<(), measure::Error> {
    measure::init_tracing();
    if let Command::Throughput { seconds } = cli.command {
        // Its own single-threaded runtime: the figure is for one core.
        let (rate, n) = measure::throughput_only(seconds)?;
        println!("{rate:.0} requests/s ({n} in {seconds} s)");
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match cli.command {
            Command::Cold { lambda } => print!("{}", measure::cold_only(&lambda.options()).await?),
            Command::Report {
                lambda,
                rss_requests,
                overhead_requests,
                seconds,
                profile,
                out,
            } => {
                let options = measure::Options {
                    rss_requests,
                    overhead_requests,
                    throughput_seconds: seconds,
                    profile: profile.and_then(|path| std::fs::read_to_string(path).ok()),
                    ..lambda.options()
                };
                let report = measure::run(&options).await?;
                std::fs::write(&out, report)?;
                println!("wrote {}", out.display());
            }
            Command::Throughput { .. } => unreachable!("handled above"),
        }
        Ok(())
    })
}
