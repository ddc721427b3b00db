-- quire.stdlib: helpers for run-fns, written against the public runtime API.
local M = {}

-- Raise "mirror: <message>" naming the line of the code that called
-- M.mirror, as runtime.sh's errors name theirs. Called by M.mirror only,
-- and never as a tail call (which would drop M.mirror's frame), so that code
-- is level 3.
local function fail(message)
  error("mirror: " .. message, 3)
end

-- What is wrong with `value` as a non-empty string named `what`, or nil.
local function not_a_string(value, what)
  if type(value) ~= "string" or value == "" then
    return what .. " must be a non-empty string, got " .. (value == "" and "an empty string" or type(value))
  end
end

-- Why `name` is not a ref name to push, or nil: git check-ref-format's rules
-- for a full name, and no part may start with "-" (git refuses such branch
-- names, and they read as options).
local function ref_name_problem(name)
  local bad = name:match("[%c ~^:?*%[\\]")
  if bad == " " then
    return "it holds a space"
  elseif bad and bad:match("%c") then
    return "it holds a control character"
  elseif bad then
    return "it holds '" .. bad .. "'"
  end
  for _, sequence in ipairs({ "..", "@{", "//" }) do
    if name:find(sequence, 1, true) then
      return "it holds '" .. sequence .. "'"
    end
  end
  if name:sub(-1) == "/" or name:sub(-1) == "." then
    return "it ends with '" .. name:sub(-1) .. "'"
  end
  for part in name:gmatch("[^/]+") do
    if part:sub(1, 1) == "." or part:sub(1, 1) == "-" then
      return "a part of it starts with '" .. part:sub(1, 1) .. "'"
    elseif part:sub(-5) == ".lock" then
      return "a part of it ends with '.lock'"
    end
  end
  return nil
end

-- The refs among `refs` that are local tags of the built commit `sha` (as a
-- set): pushed as they are, an annotated or signed tag stays one on the
-- mirror. A tag of a tag is peeled once only, and so is not among them.
local function local_tags_at(runtime, sha, refs)
  local argv = { "git", "for-each-ref", "--format=%(objectname) %(*objectname) %(refname)" }
  local wanted = {}
  for _, ref in ipairs(refs) do
    if ref:sub(1, 10) == "refs/tags/" then
      wanted[ref] = true
      argv[#argv + 1] = ref
    end
  end
  local found = {}
  if #argv == 3 then
    return found
  end
  -- It lists the tags that exist (and any under them: patterns match a
  -- prefix up to a slash); should it fail, none is found and the commit
  -- itself is pushed.
  local listed = runtime.sh(argv, { ["allow-failure"] = true })
  for object, peeled, ref in listed.stdout:gmatch("(%x+) (%x*) ([^\n]+)") do
    local commit = peeled ~= "" and peeled or object
    if wanted[ref] and commit == sha:lower() then
      found[ref] = true
    end
  end
  return found
end

-- Push the built commit to another remote: set each of opts.refs (default:
-- the pushed ref, unless it is not under refs/, as HEAD when detached) and
-- the tag opts.tag names, if given, to push.sha on url. The commit that was
-- built is what goes, whatever the local branches hold; the tag is made on
-- the remote only, so local tags are never touched. A local tag already at
-- the built commit is pushed as it is.
-- The secret opts.secret, if any, reaches git as http.extraHeader through
-- GIT_CONFIG_* variables, so it is never in argv, events or logs.
-- What is wrong with `url` and `opts` as arguments of mirror, or nil.
-- ci.mirror asks when the pipeline loads, so validate finds it too.
function M.mirror_problem(url, opts)
  local problem = not_a_string(url, "url")
  if problem then
    return problem
  elseif url:sub(1, 1) == "-" then
    return "url '" .. url .. "' starts with '-': git would take it for an option"
  end
  if opts == nil then
    return nil
  elseif type(opts) ~= "table" then
    return "the options must be a table, got " .. type(opts)
  end
  if opts.secret ~= nil then
    problem = not_a_string(opts.secret, ":secret")
    if problem then return problem end
  end
  if opts.tag ~= nil and type(opts.tag) ~= "function" then
    return ":tag must be a function of push returning the tag's name, got " .. type(opts.tag)
  end
  if opts.refs ~= nil then
    if type(opts.refs) ~= "table" then
      return ":refs must be a sequence of ref names, such as [:refs/heads/main], got " .. type(opts.refs)
    elseif #opts.refs == 0 then
      return ":refs must name at least one ref (leave it out to push the pushed ref)"
    end
    for _, ref in ipairs(opts.refs) do
      problem = not_a_string(ref, "each of :refs")
      if problem then
        return problem
      elseif ref:sub(1, 5) ~= "refs/" then
        return "each of :refs must be a full ref name, such as refs/heads/main, got '" .. ref .. "'"
      end
      problem = ref_name_problem(ref)
      if problem then
        return ":refs names '" .. ref .. "', which is not a valid ref name: " .. problem
      end
    end
  end
  return nil
end

function M.mirror(runtime, url, opts)
  if type(runtime) ~= "table" or type(runtime.jobs) ~= "function" then
    fail("the first argument must be the runtime table, as in (stdlib.mirror runtime url opts), got " .. type(runtime))
  end
  local problem = M.mirror_problem(url, opts)
  if problem then
    fail(problem)
  end
  opts = opts or {}
  local push = runtime.jobs("quire/push")
  local sha = push.sha
  if not sha:find("[^0]") then
    fail("there is no commit to push: the workspace is not a git repository, or it has no commits")
  elseif not (sha:match("^%x+$") and (#sha == 40 or #sha == 64)) then
    fail("push.sha '" .. sha .. "' is not a commit id")
  end
  -- A server asking for credentials fails the push at once, with git's
  -- "terminal prompts disabled", instead of a prompt no one answers.
  local env = { GIT_TERMINAL_PROMPT = "0" }
  if opts.secret ~= nil then
    -- After the entries the runner's environment gives git, if any.
    local count = runtime.env("GIT_CONFIG_COUNT") or ""
    local n = 0
    if count ~= "" then
      n = count:match("^%d+$") and math.tointeger(tonumber(count))
      if not n then
        fail("GIT_CONFIG_COUNT is '" .. count .. "' in the environment, not a number of entries")
      end
    end
    env.GIT_CONFIG_COUNT = tostring(n + 1)
    env["GIT_CONFIG_KEY_" .. n] = "http.extraHeader"
    env["GIT_CONFIG_VALUE_" .. n] = runtime.secret(opts.secret)
  end
  -- Each destination once: git refuses a push naming one twice, as when the
  -- pushed ref is the very tag opts.tag names.
  local refs, listed = {}, {}
  local function add(ref)
    if not listed[ref] then
      listed[ref] = true
      refs[#refs + 1] = ref
    end
  end
  local pushed_ref = {}
  if opts.refs == nil and push.ref:sub(1, 5) == "refs/" then
    local problem = ref_name_problem(push.ref)
    if problem then
      fail("the pushed ref '" .. push.ref .. "' is not a valid ref name: " .. problem)
    end
    pushed_ref = { push.ref }
  end
  for _, ref in ipairs(opts.refs or pushed_ref) do
    add(ref)
  end
  local tag
  if opts.tag ~= nil then
    tag = opts.tag(push)
    local problem = not_a_string(tag, "the :tag function's result")
    if problem then
      fail(problem)
    end
    problem = ref_name_problem("refs/tags/" .. tag)
    if problem then
      fail("the :tag function returned '" .. tag .. "', which is not a valid tag name: " .. problem)
    end
    add("refs/tags/" .. tag)
  end
  if #refs == 0 then
    fail(
      "nothing to push: the pushed ref is '"
        .. push.ref
        .. "', not a ref under refs/ (as on a detached HEAD without --ref), and there is no :tag or :refs"
    )
  end
  local tagged = local_tags_at(runtime, sha, refs)
  -- Nothing after --end-of-options (git 2.24) is an option, whatever it holds.
  local argv = { "git", "push", "--end-of-options", url }
  for _, ref in ipairs(refs) do
    argv[#argv + 1] = (tagged[ref] and ref or sha) .. ":" .. ref
  end
  local pushed = runtime.sh(argv, { env = env, ["allow-failure"] = true })
  if pushed.exit ~= 0 then
    fail("git push to " .. url .. " failed (exit code " .. pushed.exit .. "): " .. pushed.stderr)
  end
  return { url = url, refs = refs, tag = tag }
end

return M
