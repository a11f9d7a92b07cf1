#!/usr/bin/env bash
# A lab's nightly job on Slurm (from cron on a login node): every shipped scenario on a whole node
# with a GPU of its model, then the report and the history of every night, all below a shared
# directory. The report job exits 1 when the night regressed (FAILED in sacct).
#
#   crontab: 0 1 * * * /opt/migbench/deploy/slurm/nightly-slurm.sh
#
# Nodes carry their GPU model as a feature, as migbench names it (slurm.conf:
# NodeName=gpu[01-04] Feature=h100-80gb Gres=gpu:h100:8 ...), so that --constraint '{gpu}' puts
# each scenario on its model. The jobs run the MIG steps through the sudo rule of
# sudoers.migbench; sbatch passes the environment on, MIGBENCH_NVIDIA_SMI included.
set -euo pipefail
export MIGBENCH_NVIDIA_SMI=/usr/local/libexec/migbench/nvidia-smi-sudo
exec migbench slurm submit /opt/migbench/scenarios/*.toml \
    --results /shared/migbench/nightly \
    --partition gpu \
    --constraint '{gpu}'
