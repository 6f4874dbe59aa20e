#!/bin/bash
cd /work/lmq2
export TRAINYARD_HOME=/work/lmq2/ws OMP_NUM_THREADS=1 PYTHONPATH=/tmp/lmrun/src
date -u > run.log; uptime >> run.log
/usr/bin/time -v /work/main/.venv/bin/python -m trainyard train kjv-train.txt --task causal-lm --size 3M --vocab-size 4000 --context 128 --batch-size 16 \
    --lr 2e-3 --doc-separator '\n\n' --time-limit 33m --name kjv3m --json > train.json 2> train.err
date -u >> run.log; uptime >> run.log
/work/main/.venv/bin/python -m trainyard evaluate kjv3m@1 --data kjv-heldout.txt > eval.txt 2>&1
for args in "--temperature 0" "--temperature 0 --no-repeat-ngram 3" "--temperature 0.8 --top-k 40 --top-p 0.95 --seed 1" "--temperature 0.8 --top-k 40 --top-p 0.95 --seed 1 --repetition-penalty 1.2" "--temperature 0.7 --top-p 0.9 --seed 2 --no-repeat-ngram 3"; do
  for p in "In the beginning" "And the LORD said unto Moses" "Blessed are"; do
    echo "== $args | $p" >> samples.txt
    /work/main/.venv/bin/python -m trainyard generate kjv3m@1 "$p" --max-tokens 60 $args >> samples.txt 2>&1
  done
done
date -u >> run.log
