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
        #[command(flatten)]
        cpu: Cpu,
        /// Requests of each soak (0: no soak).
        #[arg(long, env = "BENCH_SOAK_REQUESTS", default_value_t = 100_000)]
        soak_requests: usize,
        /// Where to write the report (the plots go to `benchmarks/` beside it).
        #[arg(long, env = "BENCH_OUT", default_value = "BENCHMARKS.md")]
        out: PathBuf,
    },
    /// Only the cold starts: `<function> <ms to first poll> <ms to first response>`, medians.
    Cold {
        #[command(flatten)]
        lambda: Lambda,
    },
    /// Only the in-process figures (no AWS, no release packages): the upstream round trips of
    /// every route and the own overhead of the measured routes, as Markdown tables.
    Trips {
        /// Requests per measured route for the overhead figures.
        #[arg(long, env = "BENCH_OVERHEAD_REQUESTS", default_value_t = 200)]
        overhead_requests: usize,
    },
    /// Only the CPU per exchange of the local stack's server and of the customer-token bootstrap
    /// (each on its own core), with profiles by crate given `--perf-dir`.
    Cpu {
        #[command(flatten)]
        lambda: Lambda,
        #[command(flatten)]
        cpu: Cpu,
    },
}

/// The CPU-per-exchange runs.
#[derive(Args)]
struct Cpu {
    /// The `--profile profiling` builds of `local-stack` and `customer-token`.
    #[arg(long, env = "PROFILING_DIR", default_value = "target/profiling")]
    profiling_dir: PathBuf,
    /// Seconds of each measured window.
    #[arg(long, env = "BENCH_CPU_SECONDS", default_value_t = 10)]
    seconds: u64,
    /// Where to keep `perf record` data (profiles are taken only with it).
    #[arg(long, env = "BENCH_PERF_DIR")]
    perf_dir: Option<PathBuf>,
    /// moto's process id, kept off the measured core during the CPU runs.
    #[arg(long, env = "MOTO_PID")]
    moto_pid: Option<u32>,
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

impl Cpu {
    fn options(&self, lambda: &Lambda) -> bench::cpu::Options {
        bench::cpu::Options {
            moto_url: lambda.moto_url.clone(),
            bootstrap_dir: lambda.bootstrap_dir.clone(),
            profiling_dir: self.profiling_dir.clone(),
            seconds: self.seconds,
            perf_dir: self.perf_dir.clone(),
            moto_pid: self.moto_pid,
        }
    }
}

impl Lambda {
    fn options(self) -> measure::Options {
        measure::Options {
            moto_url: self.moto_url,
            bootstrap_dir: self.bootstrap_dir,
            cold_runs: self.cold_runs,
            rss_requests: 0,
            overhead_requests: 0,
            cpu: None,
            soak_requests: 0,
            plot_dir: PathBuf::from("benchmarks"),
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
    bench::overhead::init_tracing();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match cli.command {
            Command::Cpu { lambda, cpu } => {
                let options = cpu.options(&lambda);
                print!(
                    "{}",
                    bench::cpu::text(&bench::cpu::measure(&options).await?)
                );
            }
            Command::Trips { overhead_requests } => {
                print!("{}", bench::overhead::trips_only(overhead_requests).await?)
            }
            Command::Cold { lambda } => print!("{}", measure::cold_only(&lambda.options()).await?),
            Command::Report {
                lambda,
                rss_requests,
                overhead_requests,
                cpu,
                soak_requests,
                out,
            } => {
                let options = measure::Options {
                    rss_requests,
                    overhead_requests,
                    cpu: Some(cpu.options(&lambda)),
                    soak_requests,
                    plot_dir: out
                        .parent()
                        .unwrap_or(std::path::Path::new("."))
                        .join("benchmarks"),
                    ..lambda.options()
                };
                let report = measure::run(&options).await?;
                std::fs::write(&out, report)?;
                println!("wrote {}", out.display());
            }
        }
        Ok(())
    })
}
