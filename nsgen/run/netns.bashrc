# The rcfile of `nsgen shell`: the user's own bashrc, then a prompt that names the lab's namespace.
if [ -f ~/.bashrc ]; then
  . ~/.bashrc
fi
PS1="[netns ${NSGEN_NETNS}] ${PS1}"
