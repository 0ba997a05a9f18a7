"""Stage 4, render: plans printed into files through Jinja2 templates (scripts, README, graph, docs
page, Ansible deployment, CNI network), and files written safely."""
