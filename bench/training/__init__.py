"""Training for the fine-tuning arm: data encoding (sft), the Trainer setup (trainer), the
frozen-base classification head (head). The arm itself (cache, predict, costs) is
bench/arms/finetune.py."""
