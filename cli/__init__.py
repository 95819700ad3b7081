"""The `chatbot` command line: its subcommands (batch, datasets, finetune, bench), one module each."""
