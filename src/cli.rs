//! Command-line syntax. What the options mean is decided in `commands/`; this file only says
//! what can be typed.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The exit statuses every command shares, then those of one command, for its `--help`.
macro_rules! exit_status {
    ($($extra:literal),*) => {
        concat!(
            "Exit status:\n",
            "  0    success\n",
            $($extra, "\n",)*
            "  2    bad input: an unknown GPU, profile or workload, a bad option or file (named, with what is allowed)\n",
            "  1    migbench itself failed (I/O, a tool that broke)"
        )
    };
}

#[derive(Debug, Parser)]
#[command(
    name = "migbench",
    version = crate::version::long(),
    after_help = exit_status!(),
    about = "Should inference jobs share a GPU through MPS, be split into MIG instances, or run one at a time?",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the GPU models in the catalog.
    #[command(after_help = exit_status!())]
    Gpus(FormatArg),
    /// List this machine's NVIDIA GPUs (NVML): catalog model, UUID, memory, MIG mode, MIG devices.
    #[command(after_help = exit_status!(
        "  1    with --check-catalog: the driver's profile tables differ from the catalog (or the GPU is not in it)",
        "  2    with --check-catalog also when no GPU could be checked (MIG mode off everywhere)"
    ))]
    Discover(DiscoverArgs),
    /// Show a GPU's MIG profiles, like `nvidia-smi mig -lgip` plus placements.
    #[command(after_help = exit_status!())]
    Profiles(ProfilesArgs),
    /// List every maximal MIG layout of a GPU with what it leaves unused, best first.
    #[command(after_help = exit_status!())]
    Layouts(LayoutsArgs),
    /// How many copies of a workload fit at once under each sharing mode.
    #[command(after_help = exit_status!())]
    Plan(PlanArgs),
    /// Fit a workload's simulation profile on measured runs and write it as a workload file.
    #[command(after_help = exit_status!("  2    also when the runs cannot identify a figure (it names the run that would)"))]
    Calibrate(CalibrateArgs),
    /// Simulate every sensible way to share a GPU among workloads and rank them.
    #[command(after_help = exit_status!())]
    Advise(AdviseArgs),
    /// Check scenario files without running anything.
    #[command(after_help = exit_status!("  2    also when any file is invalid: file:line:column, what was found, what is allowed"))]
    Validate(ValidateArgs),
    /// Run a scenario's variants and record every job.
    #[command(after_help = exit_status!(
        "       (0 when the scenario ran: OOMs and failed jobs are results)",
        "  130  stopped by Ctrl-C or SIGTERM: running jobs stopped, the GPU put back as found, finished jobs recorded"
    ))]
    Run(RunArgs),
    /// Put a GPU back as found after a run that crashed, from its journal. Safe to run twice.
    #[command(after_help = exit_status!("       (1 also when the GPU could not be put back as found)"))]
    Restore(RestoreArgs),
    /// Tables and plots of the runs below some directories, written to a report directory.
    #[command(after_help = exit_status!())]
    Report(ReportArgs),
    /// Compare two sets of results; exit status 1 when a variant regressed beyond the threshold.
    #[command(after_help = exit_status!("  1    also when a variant regressed beyond the threshold"))]
    Compare(CompareArgs),
    /// Make a run directory of `vllm bench serve --save-result` (or `vllm-bench`) files, for report and compare.
    #[command(after_help = exit_status!("  2    also when a file is bad: file:line:column, what was found, what is allowed"))]
    Import(ImportArgs),
    /// Trends of a nightly history; exit status 1 when the last night regressed against the
    /// median of the nights before it.
    #[command(after_help = exit_status!("  1    also when the last night regressed beyond the threshold"))]
    History(HistoryArgs),
    /// Submit scenarios to Slurm: one job per scenario on a whole node, then the report.
    #[command(subcommand, after_help = exit_status!())]
    Slurm(SlurmCommand),
    /// Shell completions on stdout: `migbench completions bash > /etc/bash_completion.d/migbench`.
    #[command(after_help = exit_status!())]
    Completions(CompletionsArgs),
    /// The manual page (roff) on stdout: `migbench man > migbench.1; man ./migbench.1`.
    #[command(after_help = exit_status!())]
    Man,
    /// The JSON Schema of scenario or workload files on stdout (as shipped in schema/).
    #[command(after_help = exit_status!())]
    Schema(SchemaArgs),
    /// Time VRAM samples through this machine's NVML (the validation kit's sampler figure).
    #[command(hide = true)]
    SampleCost(SampleCostArgs),
    /// A simulated GPU job (started by `migbench run --sim`, not by hand).
    #[command(hide = true)]
    Synth(crate::backend::sim::synth::SynthArgs),
    /// A simulated model server (started by `migbench run --sim`, not by hand).
    #[command(hide = true)]
    SimServer(crate::backend::sim::server::SimServerArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct FormatArg {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    #[command(flatten)]
    pub output: FormatArg,
    /// Compare each GPU's MIG profile tables as its driver lists them (`nvidia-smi mig -lgip`,
    /// `-lgipp`; MIG mode must be on) with the catalog, and say what differs.
    #[arg(long)]
    pub check_catalog: bool,
}

/// What `layouts` and `plan` print: also a mig-parted configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutFormat {
    Table,
    Json,
    /// An NVIDIA mig-parted configuration file (YAML, `version: v1`), one label per layout.
    MigParted,
}

#[derive(Debug, Args)]
pub struct LayoutFormatArg {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: LayoutFormat,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which file the schema is for.
    #[arg(value_enum, default_value = "scenario")]
    pub kind: crate::schema::Kind,
}

#[derive(Debug, Args)]
pub struct ProfilesArgs {
    /// GPU model: a catalog key such as h100-80gb, or an NVML device name.
    #[arg(long)]
    pub gpu: String,
    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Debug, Args)]
pub struct LayoutsArgs {
    /// GPU model: a catalog key such as h100-80gb, or an NVML device name.
    #[arg(long)]
    pub gpu: String,
    /// Only use these profiles (names or IDs, comma-separated). Default: every profile but +me.
    #[arg(long, value_delimiter = ',')]
    pub profiles: Option<Vec<String>>,
    /// Keep only layouts that leave no compute and no memory slice unused.
    #[arg(long)]
    pub full_only: bool,
    #[command(flatten)]
    pub format: LayoutFormatArg,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// GPU model: a catalog key such as h100-80gb, or an NVML device name.
    #[arg(long)]
    pub gpu: String,
    /// Workload name; several (comma-separated or repeated) plan a mix, one job of each per copy.
    #[arg(long = "workload", required = true, value_delimiter = ',')]
    pub workloads: Vec<String>,
    /// Memory kept free in every pool: `10%` or `0.1`.
    #[arg(long, default_value = "0%")]
    pub headroom: String,
    #[command(flatten)]
    pub format: LayoutFormatArg,
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Run directories (or directories of runs), as `migbench run` writes them.
    #[arg(required_unless_present = "table", conflicts_with = "table")]
    pub runs: Vec<std::path::PathBuf>,
    /// A CSV table of figures instead of runs, published or measured by hand: columns gpu,
    /// mode, profile, co_runners, thread_cap, figure, unit (and workload, batch, source).
    #[arg(long)]
    pub table: Option<std::path::PathBuf>,
    /// With --table: rows on these profiles (or modes, on a whole GPU) are predicted, not
    /// fitted, to show the model's error on figures it never saw.
    #[arg(long, value_delimiter = ',', requires = "table")]
    pub hold_out: Vec<String>,
    /// With --table: fit the times measured at this batch size.
    #[arg(long, requires = "table")]
    pub batch: Option<u32>,
    /// The workload whose jobs are fitted.
    #[arg(long)]
    pub workload: String,
    /// Where the workload file goes; stdout when absent.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// What `advise` ranks configurations by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Objective {
    /// Most units (videos) completed per hour.
    UnitsPerHour,
    /// Shortest mean time from a job's submission (its earliest start) to its end.
    TimePerUnit,
    /// Shortest 99th-percentile time to first token (model servers; their default).
    P99Ttft,
    /// Most output tokens per second, all servers together (model servers).
    OutputTokensPerS,
    /// Least energy per unit completed: the simulator's power model (docs/energy.md).
    EnergyPerUnit,
}

#[derive(Debug, Args)]
pub struct AdviseArgs {
    /// GPU model: a catalog key such as h100-80gb, or an NVML device name.
    #[arg(long)]
    pub gpu: String,
    /// Workloads, by name or as workload files (`calibrate` writes them), comma-separated or
    /// repeated: one job of each per copy.
    #[arg(long = "workload", required = true, value_delimiter = ',')]
    pub workloads: Vec<String>,
    /// By default units-per-hour for batch workloads, p99-ttft for model servers.
    #[arg(long, value_enum)]
    pub objective: Option<Objective>,
    /// Model servers: a TOML file whose `[load]` table (a scenario's) is the load on every
    /// server; required for server workloads.
    #[arg(long)]
    pub load: Option<std::path::PathBuf>,
    /// `required`: only configurations where no job shares memory or SMs with another tenant
    /// (MIG, or one job at a time).
    #[arg(long, value_parser = ["required"])]
    pub isolation: Option<String>,
    /// Memory kept free in every pool: `10%` or `0.1`. By default 10 %, the margin vLLM keeps
    /// (gpu_memory_utilization 0.9): a configuration whose pool peaks above 90 % is listed but
    /// not advised; `--headroom 0` advises it.
    #[arg(long, default_value = "10%")]
    pub headroom: String,
    /// Copies of the mix to run (jobs of each workload); by default as many as the most that
    /// fit at once under any mode, at least 2.
    #[arg(long)]
    pub copies: Option<u32>,
    /// Writes the top three as a scenario file here, for `migbench run`.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario files (TOML).
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (TOML).
    pub file: std::path::PathBuf,
    /// Run on the simulated GPU (no GPU or driver needed). Every result says it is simulated.
    #[arg(long)]
    pub sim: bool,
    /// Where run directories go.
    #[arg(long, default_value = "results")]
    pub out: std::path::PathBuf,
    /// At most N simulated seconds per real second (with --sim), to watch the progress lines.
    /// Default: as fast as events allow (simulated time advances by events, never by sleeping).
    #[arg(
        long,
        requires = "sim",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub pace: Option<f64>,
    /// Milliseconds between VRAM samples, on the run's clock: simulated milliseconds with --sim.
    #[arg(long, default_value_t = 100)]
    pub sample_ms: u64,
    /// Also write the VRAM samples as samples.csv (about 60 times the size of their Parquet
    /// parts under samples/, which are the data; written part by part, so a killed run's CSV
    /// may lack its last seconds).
    #[arg(long)]
    pub samples_csv: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Print the nvidia-smi and nvidia-cuda-mps-control command lines of every setup and
    /// teardown step, in order, and the engine command line of every container job; change
    /// nothing. Needs no GPU.
    #[arg(long, conflicts_with = "sim")]
    pub dry_run: bool,
    /// The container engine of container workloads that name none of their own; replaces the
    /// scenario's `engine` (default: podman).
    #[arg(long, value_enum)]
    pub engine: Option<crate::container::Engine>,
    /// Where a CDI spec does not name a container's device (as after a MIG layout), regenerate
    /// it with NVIDIA's `nvidia-ctk cdi generate --output=SPEC` (default
    /// /var/run/cdi/nvidia.yaml, the file NVIDIA's refresh service writes) before the
    /// variant's jobs start, and again once the GPU is put back (or remove it if it was not
    /// there). Without it such a variant fails before its jobs start.
    #[arg(long, value_name = "SPEC", num_args = 0..=1, require_equals = true,
          default_missing_value = crate::cdi::REFRESH_SPEC)]
    pub cdi_refresh: Option<std::path::PathBuf>,
    /// Run even when other programs' compute processes use the GPU.
    #[arg(long)]
    pub force: bool,
    /// Output format of the summary (progress lines go to stderr either way).
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Keep the simulated GPU's configuration in this file, so that it outlives the run (as a
    /// real GPU's does) and `migbench restore` can put it back after a crash (with --sim).
    #[arg(long, requires = "sim", value_name = "FILE")]
    pub sim_state: Option<std::path::PathBuf>,
    /// Serve the run's figures on http://ADDR/metrics while it runs (OpenMetrics text, for a
    /// Prometheus to scrape): VRAM per GPU, MIG instance and job, job states, progress.
    #[arg(long, value_name = "IP:PORT", conflicts_with = "dry_run")]
    pub metrics_listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Journals (`journal.jsonl`) or run directories to restore from. Without any, every GPU
    /// whose lock names a journal that was not closed.
    pub journals: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub format: FormatArg,
}

/// What `report` and `compare` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextFormat {
    Table,
    Md,
    Json,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run directories, or directories searched for runs.
    #[arg(required = true)]
    pub paths: Vec<std::path::PathBuf>,
    /// The report directory: report.md, report.html, report.json, CSV tables, plots/.
    #[arg(long, default_value = "report")]
    pub out: std::path::PathBuf,
    /// What is printed; the report directory gets every format regardless.
    #[arg(long, value_enum, default_value = "table")]
    pub format: TextFormat,
    /// Also write the final figures to FILE as OpenMetrics text, for node_exporter's textfile
    /// collector (`FILE` such as /var/lib/node_exporter/textfile/migbench.prom).
    #[arg(long, value_name = "FILE")]
    pub openmetrics: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The accepted results: a run directory, a directory of runs, or a report directory.
    pub baseline: std::path::PathBuf,
    /// The results to judge, in any of the same forms.
    pub candidate: std::path::PathBuf,
    /// A change beyond this counts as a regression: `5%` or `0.05`.
    #[arg(long, default_value = "5%")]
    pub threshold: String,
    /// Compare results of different scenario files (sha256), backends or GPU models, which are
    /// otherwise refused; what differs is printed first. Simulated and measured results are
    /// never compared.
    #[arg(long)]
    pub allow_different: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: TextFormat,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Result files of `vllm bench serve --save-result` or of `vllm-bench` (with
    /// `--save-detailed`, each request too). Files of one variant at different loads become the points of a sweep.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// The GPU the load was measured on: catalog key, NVML name or PCI device ID.
    #[arg(long)]
    pub gpu: String,
    /// Where the run directory is made.
    #[arg(long, default_value = "results")]
    pub out: std::path::PathBuf,
    /// The variant of every file (default: each file's `label`, else its name without `.json`).
    #[arg(long)]
    pub variant: Option<String>,
    /// How the GPU was shared while the load was measured: full, timeslice, mps, mig or mig+mps.
    #[arg(long, default_value = "full")]
    pub mode: String,
    /// The scenario name the run is reported under.
    #[arg(long, default_value = "imported")]
    pub scenario: String,
    /// `GPU`, or the MIG profile the servers ran on.
    #[arg(long, default_value = "GPU")]
    pub instance: String,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The nightly history directory (scripts/nightly.sh's NIGHTLY_HISTORY).
    pub dir: std::path::PathBuf,
    /// The baseline: the median of this many nights before the last one.
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub baseline_nights: usize,
    /// Nights shown in the table (the plots show every night).
    #[arg(long, default_value_t = 10)]
    pub nights: usize,
    /// A change beyond this counts as a regression: `5%` or `0.05`.
    #[arg(long, default_value = "5%")]
    pub threshold: String,
    /// Where history.html, history.md, history.json and plots/ go.
    #[arg(long, default_value = "history")]
    pub out: std::path::PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    pub format: TextFormat,
}

#[derive(Debug, Subcommand)]
pub enum SlurmCommand {
    /// Write and submit (sbatch) one job per scenario and a report job that depends on them.
    Submit(SlurmSubmitArgs),
}

#[derive(Debug, Args)]
pub struct SlurmSubmitArgs {
    /// Scenario files (TOML).
    #[arg(required = true)]
    pub scenarios: Vec<std::path::PathBuf>,
    /// Where run directories go, on a filesystem every node shares; the report goes to
    /// DIR/report.
    #[arg(long)]
    pub results: std::path::PathBuf,
    /// The Slurm partition (`sbatch --partition`).
    #[arg(long)]
    pub partition: Option<String>,
    /// A node feature naming the GPU model (`sbatch --constraint`, e.g. h100).
    #[arg(long)]
    pub constraint: Option<String>,
    /// The GPU request (`sbatch --gres`, e.g. gpu:h100:1); default: none.
    #[arg(long)]
    pub gres: Option<String>,
    /// Run the scenarios on the simulated GPU.
    #[arg(long)]
    pub sim: bool,
    /// Print the batch scripts and the sbatch command lines; submit nothing.
    #[arg(long)]
    pub print: bool,
    /// The migbench the jobs run (default: this one).
    #[arg(long, value_name = "PATH")]
    pub migbench: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct SampleCostArgs {
    /// The GPU, by NVML index.
    #[arg(long, default_value_t = 0)]
    pub index: u32,
    /// Samples to time.
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// Wait until this many processes are on the GPU before timing (a figure with processes).
    #[arg(long, default_value_t = 0)]
    pub wait_processes: usize,
    /// How long to wait for them, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub wait_s: f64,
    #[command(flatten)]
    pub format: FormatArg,
}
