#!/usr/bin/env bash
# Paper-style continual-learning experiment (DC ICLR'21 / DM WACV'23 GDumb protocol):
# Split-MNIST, 5 experiences x 2 classes, memory of 100 images (10 per class at the end),
# distilled memory (DM) vs Avalanche's reservoir, class-balanced and herding buffers, 3 seeds,
# both protocols. Outputs: runs/continual-split-mnist-{gdumb,replay}/{results.json,report.md,
# accuracy_per_experience.png,logs/}.
#
#   BUDGET=cpu   (default) the CPU budget measured in docs/continual.md: MLP learner, the
#                distilled buffer's CPU default (DM 2,000 iterations on random MLPs, no DSA,
#                the continual section of the small budget in ddapps/budgets.py), 50 GDumb epochs, 1 replay epoch.
#   BUDGET=paper the papers' settings (GPU): ConvNet-3 learner and DM on ConvNet-3 with DSA,
#                20,000 DM iterations (--paper-distill), 1000 GDumb epochs.
set -euo pipefail
DATA_DIR="${DATA_DIR:-${DDAPPS_DATA:-../shared/data}}"
DEVICE="${DEVICE:-cpu}"
COMMON=(--benchmark split-mnist --buffer distilled:dm,reservoir,class-balanced,herding --mem-size 100
        --seeds 0,1,2 --data-dir "$DATA_DIR" --device "$DEVICE")
if [[ "${BUDGET:-cpu}" == "paper" ]]; then
  BUDGET_ARGS=(--paper-distill --net convnet --gdumb-epochs 1000 --epochs 1 --batch-size 256)
else
  BUDGET_ARGS=(--net mlp --gdumb-epochs 50 --epochs 1 --batch-size 128)
fi
for protocol in gdumb replay; do
  ddapps continual "${COMMON[@]}" "${BUDGET_ARGS[@]}" --protocol "$protocol" \
    --out "runs/continual-split-mnist-$protocol"
done
